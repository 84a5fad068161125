//! The machine's shape through hwloc (`hwlocality`): packages, NUMA nodes,
//! cores with their hardware threads, caches; and the placement of workers
//! on it. Works on the real machine and on hwloc synthetic descriptions
//! (`"pack:2 numa:2 core:4 pu:2"`), which is how placement across NUMA
//! nodes is tested on a one-node machine.

#[cfg(target_os = "linux")]
use hwlocality::object::attributes::ObjectAttributes;
#[cfg(target_os = "linux")]
use hwlocality::object::types::ObjectType;
#[cfg(target_os = "linux")]
use hwlocality::Topology;
use std::fmt;

/// One physical core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// The package (socket) it is in, by logical index.
    pub package: usize,
    /// The NUMA node its memory is local to (OS index).
    pub numa_node: usize,
    /// Its hardware threads (OS CPU ids), first one first.
    pub cpus: Vec<usize>,
}

/// A CPU cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// 1, 2, 3…
    pub level: u32,
    /// Bytes.
    pub size: u64,
    /// The CPUs that share it.
    pub cpus: Vec<usize>,
}

/// The machine as hwloc sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineTopology {
    /// Packages (sockets).
    pub packages: usize,
    /// NUMA nodes (OS indices) and their CPUs.
    pub numa_nodes: Vec<(usize, Vec<usize>)>,
    /// Physical cores.
    pub cores: Vec<Core>,
    /// CPU caches.
    pub caches: Vec<Cache>,
}

pub use sprint_config::Placement;

/// One worker's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPlace {
    /// The CPU it runs on.
    pub cpu: usize,
    /// Its NUMA node: where its arena is bound.
    pub numa_node: usize,
    /// Its package.
    pub package: usize,
}

/// Topology could not be read.
#[derive(Debug, thiserror::Error)]
#[error("hwloc: {0}")]
pub struct TopologyError(String);

#[cfg(not(target_os = "linux"))]
const UNSUPPORTED: &str =
    "topology is read through hwloc on Linux only: unsupported on this platform";

#[cfg(target_os = "linux")]
fn bits(b: impl IntoIterator<Item = hwlocality::bitmap::BitmapIndex>) -> Vec<usize> {
    b.into_iter().map(usize::from).collect()
}

impl MachineTopology {
    /// This machine. Read through hwloc on Linux; elsewhere an error that
    /// says so, and callers place workers without topology.
    pub fn detect() -> Result<MachineTopology, TopologyError> {
        #[cfg(target_os = "linux")]
        {
            let t = Topology::new().map_err(|e| TopologyError(e.to_string()))?;
            Ok(MachineTopology::from_hwloc(&t))
        }
        #[cfg(not(target_os = "linux"))]
        Err(TopologyError(UNSUPPORTED.into()))
    }

    /// An hwloc synthetic description, e.g. `"pack:2 numa:2 core:4 pu:2"`.
    pub fn synthetic(description: &str) -> Result<MachineTopology, TopologyError> {
        #[cfg(target_os = "linux")]
        {
            let t = Topology::builder()
                .from_synthetic(description)
                .map_err(|e| TopologyError(format!("synthetic topology {description:?}: {e}")))?
                .build()
                .map_err(|e| TopologyError(e.to_string()))?;
            Ok(MachineTopology::from_hwloc(&t))
        }
        #[cfg(not(target_os = "linux"))]
        Err(TopologyError(format!("{UNSUPPORTED} ({description:?})")))
    }

    #[cfg(target_os = "linux")]
    fn from_hwloc(t: &Topology) -> MachineTopology {
        let packages = t.objects_with_type(ObjectType::Package).count().max(1);
        let numa_nodes = t
            .objects_with_type(ObjectType::NUMANode)
            .map(|n| {
                (
                    n.os_index().unwrap_or(0),
                    n.cpuset().map(|c| bits(c.iter_set())).unwrap_or_default(),
                )
            })
            .collect();
        let cores = t
            .objects_with_type(ObjectType::Core)
            .map(|c| {
                let package = c
                    .first_ancestor_with_type(ObjectType::Package)
                    .map(|p| p.logical_index())
                    .unwrap_or(0);
                let numa_node = c
                    .nodeset()
                    .and_then(|n| n.first_set())
                    .map(usize::from)
                    .unwrap_or(0);
                let cpus = c.cpuset().map(|s| bits(s.iter_set())).unwrap_or_default();
                Core {
                    package,
                    numa_node,
                    cpus,
                }
            })
            .collect();
        let caches = [
            ObjectType::L1Cache,
            ObjectType::L2Cache,
            ObjectType::L3Cache,
        ]
        .iter()
        .enumerate()
        .flat_map(|(i, ty)| {
            t.objects_with_type(*ty).map(move |o| Cache {
                level: i as u32 + 1,
                size: match o.attributes() {
                    Some(ObjectAttributes::Cache(c)) => c.size().map(|s| s.get()).unwrap_or(0),
                    _ => 0,
                },
                cpus: o.cpuset().map(|s| bits(s.iter_set())).unwrap_or_default(),
            })
        })
        .collect();
        MachineTopology {
            packages,
            numa_nodes,
            cores,
            caches,
        }
    }

    /// The NUMA node of `cpu`.
    pub fn node_of(&self, cpu: usize) -> Option<usize> {
        self.cores
            .iter()
            .find(|c| c.cpus.contains(&cpu))
            .map(|c| c.numa_node)
    }

    /// Places `workers` workers on `allowed` CPUs: one per physical core
    /// before any core's second hardware thread, spread across NUMA nodes
    /// (and packages) or packed into the first, as `how` says. Fewer places
    /// than workers if fewer CPUs are allowed.
    pub fn place(&self, allowed: &[usize], workers: usize, how: Placement) -> Vec<WorkerPlace> {
        // Per NUMA node (in node order), its cores' first threads, then
        // their further threads.
        let mut by_node: Vec<(usize, Vec<WorkerPlace>)> = Vec::new();
        let max_threads = self.cores.iter().map(|c| c.cpus.len()).max().unwrap_or(0);
        for round in 0..max_threads {
            for core in &self.cores {
                let Some(&cpu) = core.cpus.get(round) else {
                    continue;
                };
                if !allowed.contains(&cpu) {
                    continue;
                }
                let place = WorkerPlace {
                    cpu,
                    numa_node: core.numa_node,
                    package: core.package,
                };
                match by_node.iter_mut().find(|(n, _)| *n == core.numa_node) {
                    Some((_, v)) => v.push(place),
                    None => by_node.push((core.numa_node, vec![place])),
                }
            }
        }
        by_node.sort_by_key(|(n, _)| *n);
        let mut out = Vec::with_capacity(workers);
        match how {
            Placement::Pack => {
                for (_, places) in &by_node {
                    for p in places {
                        if out.len() == workers {
                            return out;
                        }
                        out.push(*p);
                    }
                }
            }
            Placement::Spread => {
                let mut next = vec![0usize; by_node.len()];
                while out.len() < workers {
                    let mut took = false;
                    for (i, (_, places)) in by_node.iter().enumerate() {
                        if out.len() == workers {
                            break;
                        }
                        if let Some(p) = places.get(next[i]) {
                            out.push(*p);
                            next[i] += 1;
                            took = true;
                        }
                    }
                    if !took {
                        break;
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for MachineTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l3: u64 = self
            .caches
            .iter()
            .filter(|c| c.level == 3)
            .map(|c| c.size)
            .max()
            .unwrap_or(0);
        write!(
            f,
            "{} package(s), {} NUMA node(s), {} core(s), {} CPU(s)",
            self.packages,
            self.numa_nodes.len().max(1),
            self.cores.len(),
            self.cores.iter().map(|c| c.cpus.len()).sum::<usize>()
        )?;
        if l3 > 0 {
            write!(f, ", L3 {} MiB", l3 >> 20)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_is_read() {
        let t = MachineTopology::detect().unwrap();
        assert!(!t.cores.is_empty());
        let cpus: usize = t.cores.iter().map(|c| c.cpus.len()).sum();
        let online = std::thread::available_parallelism().unwrap().get();
        assert!(cpus >= online, "{t}: {cpus} CPUs, {online} available");
        assert!(t.node_of(t.cores[0].cpus[0]).is_some());
    }

    #[test]
    fn a_synthetic_two_package_four_node_machine() {
        let t = MachineTopology::synthetic("pack:2 numa:2 core:4 pu:2").unwrap();
        assert_eq!(t.packages, 2);
        assert_eq!(t.numa_nodes.len(), 4);
        assert_eq!(t.cores.len(), 16);
        assert!(t.cores.iter().all(|c| c.cpus.len() == 2));
        // Cores 0-3 are node 0, package 0; cores 12-15 node 3, package 1.
        assert_eq!((t.cores[0].numa_node, t.cores[0].package), (0, 0));
        assert_eq!((t.cores[15].numa_node, t.cores[15].package), (3, 1));
    }

    #[test]
    fn spread_crosses_nodes_and_pack_fills_one() {
        let t = MachineTopology::synthetic("pack:2 numa:2 core:4 pu:2").unwrap();
        let all: Vec<usize> = (0..32).collect();
        let spread = t.place(&all, 4, Placement::Spread);
        let nodes: Vec<usize> = spread.iter().map(|p| p.numa_node).collect();
        assert_eq!(nodes, vec![0, 1, 2, 3], "one worker per node");
        let pack = t.place(&all, 4, Placement::Pack);
        assert!(pack.iter().all(|p| p.numa_node == 0), "{pack:?}");
        // One per physical core before any sibling thread.
        let cores: std::collections::HashSet<usize> = pack.iter().map(|p| p.cpu / 2).collect();
        assert_eq!(cores.len(), 4, "{pack:?}");
        // Only allowed CPUs are used; fewer places when fewer are allowed.
        let some = t.place(&[0, 1, 8], 5, Placement::Spread);
        assert_eq!(some.len(), 3);
        assert!(some.iter().all(|p| [0, 1, 8].contains(&p.cpu)));
        assert_eq!(some[0].cpu, 0, "a core's first thread first");
    }

    #[test]
    fn a_bad_synthetic_description_is_an_error() {
        let e = MachineTopology::synthetic("pack:x").unwrap_err();
        assert!(e.to_string().contains("pack:x"), "{e}");
    }
}
