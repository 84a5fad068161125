//! Which CPUs the process may use, and the placement plan: which worker
//! runs on which CPU, and whether it is pinned there. The topology
//! ([`crate::topology`]) orders the CPUs by the configuration's
//! `placement` (spread or pack) when the configuration names none.

use sprint_config::{Config, IdleStrategy, Pinning, Scheduling};
use std::fmt;

pub use sprint_config::{possible_cpus, FALLBACK_POSSIBLE_CPUS};

/// The CPUs in this process's affinity mask (that of its main thread).
/// Where affinity masks cannot be read (not Linux), every CPU the OS
/// reports.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        crate::thread::affinity(pid)
    }
    #[cfg(not(target_os = "linux"))]
    Ok((0..std::thread::available_parallelism()?.get()).collect())
}

/// The machine a configuration is validated against: the allowed and
/// isolated CPUs, and the memory its budget is a share of.
pub fn machine() -> std::io::Result<sprint_config::Machine> {
    Ok(sprint_config::Machine {
        allowed: Some(allowed_cpus()?),
        isolated: isolated_cpus(),
        memory: crate::budget::detect(100)
            .ok()
            .map(|b| match b.cgroup_limit {
                Some((l, _)) => b.ram.min(l),
                None => b.ram,
            }),
    })
}

/// The kernel's isolated CPUs (`isolcpus=`), empty if none or unknown.
pub fn isolated_cpus() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/isolated")
        .ok()
        .and_then(|s| {
            let t = s.trim();
            if t.is_empty() {
                None
            } else {
                t.parse::<sprint_config::CpuList>().ok()
            }
        })
        .map(|c| c.ids().to_vec())
        .unwrap_or_default()
}

/// Where one worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    /// The worker's index.
    pub index: usize,
    /// Its planned CPU.
    pub cpu: usize,
    /// Whether the thread is pinned to that CPU.
    pub pinned: bool,
}

/// The placement plan of a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One entry per worker.
    pub workers: Vec<WorkerPlan>,
    /// The CPUs workers were placed on, in order.
    pub cpus: Vec<usize>,
    /// Where those CPUs came from.
    pub cpus_from: &'static str,
    /// The scheduling policy.
    pub scheduling: Scheduling,
    /// The idle strategy.
    pub idle: IdleStrategy,
}

impl Plan {
    /// Plans `config` on a machine where `allowed` CPUs may be used and
    /// `isolated` are reserved by the kernel for dedicated work.
    pub fn new(config: &Config, allowed: &[usize], isolated: &[usize]) -> Plan {
        let dedicated: Vec<usize> = isolated
            .iter()
            .copied()
            .filter(|c| allowed.contains(c))
            .collect();
        let (cpus, cpus_from) = match &config.cpus {
            Some(c) => (c.ids().to_vec(), "config"),
            None if config.wants_dedicated_cores() && !dedicated.is_empty() => {
                (dedicated, "isolated CPUs")
            }
            None => (allowed.to_vec(), "allowed CPUs"),
        };
        let cpus = if cpus.is_empty() { vec![0] } else { cpus };
        let n = config.workers.unwrap_or(cpus.len()).max(1);
        // CPUs an operator names are meant: they pin at every level,
        // unless the operator set `pinning` too.
        let named = config.cpus.is_some() && config.left_to_level("pinning");
        let pinned = named
            || match config.pinning {
                Pinning::Never => false,
                Pinning::Always => true,
                Pinning::Auto => cpus.len() >= 4,
            };
        Plan {
            workers: (0..n)
                .map(|i| WorkerPlan {
                    index: i,
                    cpu: cpus[i % cpus.len()],
                    pinned,
                })
                .collect(),
            cpus,
            cpus_from,
            scheduling: config.scheduling,
            idle: config.idle,
        }
    }
}

impl Plan {
    /// The allowed CPUs no pinned worker takes: where the blocking pool and
    /// the thread that started the runtime run when workers are pinned.
    /// `None` when no worker is pinned, or when pinned workers take every
    /// allowed CPU (then nothing is left to move the others to).
    pub fn others(&self, allowed: &[usize]) -> Option<Vec<usize>> {
        let pinned: Vec<usize> = self
            .workers
            .iter()
            .filter(|w| w.pinned)
            .map(|w| w.cpu)
            .collect();
        if pinned.is_empty() {
            return None;
        }
        let rest: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|c| !pinned.contains(c))
            .collect();
        (!rest.is_empty()).then_some(rest)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus = sprint_config::CpuList::new(self.cpus.clone());
        writeln!(
            f,
            "{} workers on CPUs {} ({}), scheduling {}, idle {}",
            self.workers.len(),
            cpus,
            self.cpus_from,
            self.scheduling,
            self.idle
        )?;
        for w in &self.workers {
            writeln!(
                f,
                "  sprint-worker-{}: CPU {}{}",
                w.index,
                w.cpu,
                if w.pinned { ", pinned" } else { ", not pinned" }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowed_cpus_are_within_the_possible_bound() {
        assert!(possible_cpus() > *allowed_cpus().unwrap().iter().max().unwrap());
    }

    #[test]
    fn named_cpus_are_used_in_order_and_workers_wrap_around_them() {
        let mut c = Config::for_level(sprint_config::Level::Standard);
        c.cpus = Some(sprint_config::CpuList::new(vec![3, 1]));
        c.workers = Some(3);
        let p = Plan::new(&c, &[0, 1, 2, 3], &[]);
        let cpus: Vec<usize> = p.workers.iter().map(|w| w.cpu).collect();
        assert_eq!(cpus, [3, 1, 3]);
        assert_eq!(p.cpus_from, "config");
    }

    #[test]
    fn named_cpus_pin_at_every_level_unless_pinning_is_set_too() {
        for level in sprint_config::Level::ALL {
            let mut c = Config::for_level(level);
            c.cpus = Some(sprint_config::CpuList::new(vec![1]));
            let p = Plan::new(&c, &[0, 1], &[]);
            assert!(p.workers.iter().all(|w| w.pinned), "{level}");
            assert_eq!(p.others(&[0, 1]), Some(vec![0]), "{level}");
        }
        let c = sprint_config::ConfigBuilder::new()
            .level(sprint_config::Level::Standard)
            .read_env(false)
            .cpus(vec![1])
            .configure(|c| c.pinning = Pinning::Never)
            .resolve()
            .unwrap();
        let p = Plan::new(&c, &[0, 1], &[]);
        assert!(
            p.workers.iter().all(|w| !w.pinned),
            "the operator said never"
        );
        assert_eq!(p.others(&[0, 1]), None);
    }

    #[test]
    fn no_cpu_is_left_for_the_others_when_workers_take_them_all() {
        let c = Config::for_level(sprint_config::Level::Aggressive);
        let p = Plan::new(&c, &[0, 1], &[]);
        assert_eq!(p.others(&[0, 1]), None);
    }

    #[test]
    fn dedicated_levels_take_the_isolated_cpus() {
        let c = Config::for_level(sprint_config::Level::Enterprise);
        let p = Plan::new(&c, &[0, 1, 2, 3], &[2, 3]);
        assert_eq!(p.cpus, [2, 3]);
        assert!(p.workers.iter().all(|w| w.pinned));
        let s = Plan::new(
            &Config::for_level(sprint_config::Level::Standard),
            &[0, 1, 2, 3],
            &[2, 3],
        );
        assert_eq!(s.cpus, [0, 1, 2, 3]);
    }
}
