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
