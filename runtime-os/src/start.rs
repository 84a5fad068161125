//! The start-up plan: everything a runtime decides about the machine
//! before it starts a thread. The configuration is validated against the
//! machine; a cgroup CPU quota caps the default worker count; the
//! topology orders the CPUs by `placement`; the memory plan sizes each
//! worker's arena within the budget and the memory limit; and an SQPOLL
//! kernel thread gets a spare CPU if there is one. Nothing is changed
//! here: sprint-core applies the plan (pinning, tuning, arenas) as it
//! starts each worker.

use crate::memory::{MemoryError, MemoryPlan};
use crate::placement::{self, Plan};
use sprint_config::{Config, ConfigError, Machine};

/// Why a start-up plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// This process's CPU affinity cannot be read.
    #[error("cannot read this process's CPU affinity: {0}")]
    Affinity(std::io::Error),
    /// The configuration does not hold on this machine.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Memory cannot be set up as asked.
    #[error("memory: {0}")]
    Memory(#[from] MemoryError),
}

/// What a runtime will do on this machine.
#[derive(Debug, Clone)]
pub struct StartPlan {
    /// Which worker runs where, pinned or not.
    pub plan: Plan,
    /// Each worker's arena, the memory limit, mlockall.
    pub memory: MemoryPlan,
    /// CPUs an SQPOLL kernel thread may poll on.
    pub spare_cpus: Vec<usize>,
    /// How many CPUs this process may use.
    pub allowed_cpus: usize,
    /// The machine the configuration was checked against.
    pub machine: Machine,
}

impl StartPlan {
    /// Plans `config` on this machine.
    pub fn new(config: &Config) -> Result<StartPlan, PlanError> {
        let machine = placement::machine().map_err(PlanError::Affinity)?;
        config.validate_on(&machine)?;
        let allowed = machine.allowed.clone().unwrap_or_default();
        let isolated = machine.isolated.clone();
        // A cgroup CPU quota (the tightest over every ancestor) caps the
        // default worker count: a container given 1.5 CPUs gets 2 workers,
        // not one per visible CPU.
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let quota = crate::cgroup::cpu_quota(std::path::Path::new("/sys/fs/cgroup"), &cgroups);
        let mut plan = match (&quota, config.workers) {
            (Some((q, _)), None) if (q.ceil() as usize) < allowed.len() => {
                let mut capped = config.clone();
                capped.workers = Some((q.ceil() as usize).max(1));
                Plan::new(&capped, &allowed, &isolated)
            }
            _ => Plan::new(config, &allowed, &isolated),
        };
        let topo = crate::topology::MachineTopology::detect();
        let mut memory = match &topo {
            Ok(t) => {
                crate::memory::place(&mut plan, config, t);
                crate::memory::plan(config, &plan, Some(t))
            }
            Err(e) => crate::memory::plan(config, &plan, None).map(|mut m| {
                m.notes
                    .push(format!("no topology ({e}): NUMA binding to node 0"));
                m
            }),
        }?;
        if let Ok(t) = &topo {
            memory.notes.insert(0, format!("machine: {t}"));
        }
        if let Some((q, from)) = &quota {
            memory.notes.insert(
                0,
                format!(
                    "cgroup CPU quota {q:.2} CPUs ({}): {} worker(s)",
                    from.display(),
                    plan.workers.len()
                ),
            );
        }
        // Where an SQPOLL kernel thread may poll: the CPU named, else the
        // kernel's isolated CPUs no worker uses. A CPU that runs other work
        // is no spare: the relay benchmark measured the polling thread
        // taking a load generator's CPU there (send lag 92 ms).
        let spare_cpus: Vec<usize> = match config.uring_sqpoll_cpu {
            Some(cpu) => vec![cpu],
            None => allowed
                .iter()
                .copied()
                .filter(|c| !plan.workers.iter().any(|w| w.cpu == *c))
                .filter(|c| isolated.contains(c))
                .collect(),
        };
        Ok(StartPlan {
            plan,
            memory,
            spare_cpus,
            allowed_cpus: allowed.len(),
            machine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprint_config::Level;

    #[test]
    fn a_plan_on_this_machine_places_one_worker_per_allowed_cpu() {
        let allowed = crate::allowed_cpus().unwrap();
        let p = StartPlan::new(&Config::for_level(Level::Basic)).unwrap();
        assert_eq!(p.allowed_cpus, allowed.len());
        assert_eq!(p.machine.allowed.as_deref(), Some(&allowed[..]));
        // One per allowed CPU, fewer under a cgroup CPU quota.
        assert!((1..=allowed.len()).contains(&p.plan.workers.len()));
        assert!(p.plan.workers.iter().all(|w| allowed.contains(&w.cpu)));
        assert!(!p.plan.workers.iter().any(|w| w.pinned), "Basic never pins");
        // Basic's arenas are grown on demand: one per worker, nothing
        // committed, prefaulted or locked up front.
        assert_eq!(p.memory.arenas.len(), p.plan.workers.len());
        for a in &p.memory.arenas {
            let a = a.as_ref().expect("an arena per worker at Basic");
            assert_eq!(a.commit, 0, "{a:?}");
            assert!(!a.prefault, "{a:?}");
        }
    }

    #[test]
    fn a_cpu_outside_the_allowed_set_is_a_config_error_naming_it() {
        let mut c = Config::for_level(Level::Standard);
        c.cpus = Some(sprint_config::CpuList::new(vec![
            crate::allowed_cpus().unwrap().len() + 7,
        ]));
        match StartPlan::new(&c) {
            Err(PlanError::Config(e)) => {
                assert!(
                    e.to_string()
                        .contains("outside this process's allowed CPUs"),
                    "{e}"
                )
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn standard_gives_each_worker_an_arena_within_the_budget() {
        let mut c = Config::for_level(Level::Standard);
        c.workers = Some(2);
        let p = StartPlan::new(&c).unwrap();
        assert_eq!(p.memory.arenas.len(), 2);
        for a in p.memory.arenas.iter().flatten() {
            assert!(a.commit <= a.ceiling);
            assert_eq!(a.commit, c.arena_prealloc_bytes.min(a.ceiling));
        }
        assert!(p.memory.limit.is_some());
    }
}
