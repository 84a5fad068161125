//! Validation: every field against what it accepts, and, given the
//! [`Machine`] (read by sprint-os), against the CPUs and memory there.

use super::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const MIN_STACK: usize = 64 * KIB;
/// The largest worker stack accepted, whatever the budget.
const MAX_STACK: usize = 1024 * MIB;
/// The least a worker's arena takes (memory.rs gives up arenas below it).
const MIN_ARENA: usize = 64 * KIB;
const MAX_WORKERS: usize = 4096;
/// Workers per allowed CPU at most: a worker is a thread meant to own a
/// core; a few per CPU serve tests and oversubscribed containers, more is
/// a typo, not a configuration.
pub const MAX_WORKERS_PER_CPU: usize = 4;
/// The longest deadline or window accepted, in ms (one day): a deadline
/// is added to the clock, and past this it is a mistake.
const MAX_MS: u64 = 86_400_000;

/// The facts about the machine a configuration is checked against. The
/// configuration crate reads nothing from the OS: sprint-os fills this in
/// (`sprint_os::machine()`), tests write it by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    /// The CPUs this process may use (its affinity mask); `None`: unknown,
    /// not checked.
    pub allowed: Option<Vec<usize>>,
    /// The kernel's isolated CPUs (`isolcpus=`).
    pub isolated: Vec<usize>,
    /// The memory the budget is a percentage of: the smaller of RAM and
    /// the cgroup limit, in bytes; `None`: unknown, not checked.
    pub memory: Option<u64>,
}

impl Machine {
    /// A machine whose process may use `allowed`, with no isolated CPUs and
    /// memory unknown.
    pub fn with_cpus(allowed: &[usize]) -> Machine {
        Machine {
            allowed: Some(allowed.to_vec()),
            ..Machine::default()
        }
    }
}

/// The memory budget, in bytes: `percent` of `memory` (as the arenas'
/// budget computes it).
fn budget_of(memory: u64, percent: u8) -> usize {
    (memory / 100 * u64::from(percent)) as usize
}

impl Config {
    /// Checks every field against what it accepts, without looking at the
    /// machine (the CPU and memory checks need [`Config::validate_on`]).
    /// The error names the field, the value and why (with the limit, where
    /// one was exceeded).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_on(&Machine::default())
    }

    /// [`Config::validate`], and against `machine`: the CPUs this process
    /// may use and the memory the budget is a share of.
    pub fn validate_on(&self, machine: &Machine) -> Result<(), ConfigError> {
        let memory = machine.memory;
        if self.memory_budget_percent == 0 || self.memory_budget_percent > 100 {
            return Err(ConfigError::invalid(
                "memory_budget_percent",
                self.memory_budget_percent,
                "a percentage from 1 to 100",
            ));
        }
        let budget = memory.map(|m| budget_of(m, self.memory_budget_percent));
        let budget_words = |b: usize| {
            format!(
                "the memory budget {} MiB ({} % of {} MiB)",
                b / MIB,
                self.memory_budget_percent,
                memory.unwrap_or(0) >> 20
            )
        };
        if let Some(w) = self.workers {
            if w == 0 {
                return Err(ConfigError::invalid(
                    "workers",
                    0,
                    "a runtime needs at least one worker",
                ));
            }
            let allowed_n = machine.allowed.as_ref().map(Vec::len);
            let per_cpu = allowed_n.map_or(MAX_WORKERS, |n| {
                n.max(1).saturating_mul(MAX_WORKERS_PER_CPU)
            });
            let cap = per_cpu.min(MAX_WORKERS);
            if w > cap {
                let why = if cap == MAX_WORKERS {
                    format!("at most {MAX_WORKERS} workers")
                } else {
                    format!(
                        "at most {MAX_WORKERS_PER_CPU} workers per allowed CPU, and this process may use {} CPUs",
                        allowed_n.unwrap_or(0)
                    )
                };
                return Err(ConfigError::limit("workers", w, cap, why));
            }
        }
        if self.stack_size < MIN_STACK {
            return Err(ConfigError::invalid(
                "stack_size",
                self.stack_size,
                format!("a worker stack must be at least {MIN_STACK} bytes (64 KiB)"),
            ));
        }
        let stack_cap = budget.map_or(MAX_STACK, |b| b.min(MAX_STACK));
        if self.stack_size > stack_cap {
            let why = match budget {
                Some(b) if b < MAX_STACK => {
                    format!("one worker's stack must fit in {}", budget_words(b))
                }
                _ => "a worker stack of more than 1 GiB is a mistake".to_string(),
            };
            return Err(ConfigError::limit(
                "stack_size",
                self.stack_size,
                format!("{stack_cap} bytes"),
                why,
            ));
        }
        // Every worker's stack and the least arena it takes must fit the
        // budget: `workers = 4096` in 4 GiB is refused here, not OOM-killed
        // at start. An arena beyond that minimum shrinks to its share of
        // the budget (memory.rs), so the preallocation is not counted.
        if let (Some(w), Some(b)) = (self.workers, budget) {
            let per_worker = self.stack_size + if self.arenas { MIN_ARENA } else { 0 };
            let fit = b / per_worker;
            if w > fit {
                return Err(ConfigError::limit(
                    "workers",
                    w,
                    fit,
                    format!(
                        "{w} workers × ({} KiB stack{}) need {} MiB, over {}",
                        self.stack_size / KIB,
                        if self.arenas {
                            " + 64 KiB least arena"
                        } else {
                            ""
                        },
                        w.saturating_mul(per_worker) / MIB,
                        budget_words(b)
                    ),
                ));
            }
        }
        // A worker's preallocation an operator set must fit in the budget:
        // a typo (`arena_prealloc_bytes = 64 GiB` on 16 GiB) is refused
        // here, named, rather than committed, prefaulted and locked at
        // start. The level's own figure is not the operator's: in a small
        // cgroup (Turbo's 64 MiB in 64 MiB) it shrinks to fit, as many
        // workers' preallocations shrink to each one's share within the
        // budget (memory.rs says so in the report; strict refuses).
        let set_by_operator =
            self.arena_prealloc_bytes != Config::for_level(self.level).arena_prealloc_bytes;
        if let (true, true, Some(b)) = (self.arenas, set_by_operator, budget) {
            if self.arena_prealloc_bytes > b {
                return Err(ConfigError::limit(
                    "arena_prealloc_bytes",
                    self.arena_prealloc_bytes,
                    format!("{b} bytes"),
                    format!(
                        "one worker's arena preallocation must fit in {}",
                        budget_words(b)
                    ),
                ));
            }
        }
        if let Some(cpus) = &self.cpus {
            let ids = cpus.ids();
            if ids.is_empty() {
                return Err(ConfigError::invalid("cpus", "[]", "name at least one CPU"));
            }
            let mut seen = std::collections::BTreeSet::new();
            for c in ids {
                if !seen.insert(*c) {
                    return Err(ConfigError::invalid(
                        "cpus",
                        cpus,
                        format!("CPU {c} is listed twice"),
                    ));
                }
                if let Some(allowed) = machine.allowed.as_ref().filter(|a| !a.contains(c)) {
                    let allowed_list = CpuList::new(allowed.clone());
                    return Err(ConfigError::invalid(
                        "cpus",
                        cpus,
                        format!("CPU {c} is outside this process's allowed CPUs ({allowed_list})"),
                    ));
                }
            }
        }
        if self.coop_budget == 0 {
            return Err(ConfigError::invalid(
                "coop_budget",
                0,
                "a task needs a budget of at least 1",
            ));
        }
        if self.event_interval == 0 {
            return Err(ConfigError::invalid("event_interval", 0, "at least 1 poll"));
        }
        if self.idle_spin_us > 1_000_000 {
            return Err(ConfigError::invalid(
                "idle_spin_us",
                self.idle_spin_us,
                "at most 1000000 (one second)",
            ));
        }
        if self.rt_policy != RtPolicy::None && !(1..=99).contains(&self.rt_priority) {
            return Err(ConfigError::invalid(
                "rt_priority",
                self.rt_priority,
                format!(
                    "rt_policy = {} needs a priority from 1 to 99",
                    self.rt_policy
                ),
            ));
        }
        if !(-20..=19).contains(&self.nice) {
            return Err(ConfigError::invalid("nice", self.nice, "from -20 to 19"));
        }
        if self.timer_slack_ns == Some(0) {
            return Err(ConfigError::invalid(
                "timer_slack_ns",
                0,
                "at least 1 ns (0 means the default; leave the field unset for that)",
            ));
        }
        if let Some(addr) = &self.metrics_addr {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::invalid(
                    "metrics_addr",
                    addr,
                    "an IP address and port, e.g. 127.0.0.1:9464 (port 0 picks one)",
                ));
            }
        }
        if !self.metrics_sample_every.is_power_of_two() {
            return Err(ConfigError::invalid(
                "metrics_sample_every",
                self.metrics_sample_every,
                "a power of two: 1 (every operation), 2, 4 … 16 (the default) …",
            ));
        }
        if self.stall_threshold_us == 0 {
            return Err(ConfigError::invalid(
                "stall_threshold_us",
                0,
                "at least 1 µs",
            ));
        }
        // The Turbo preset turns SQPOLL on; an operator who picks epoll
        // there (SPRINT_IO=epoll) gets epoll, and the preset's SQPOLL is
        // moot. Asking for SQPOLL by name with epoll is a contradiction.
        let sqpoll_asked = !Config::for_level(self.level).uring_sqpoll;
        if self.uring_sqpoll && sqpoll_asked && self.io_driver != IoDriver::Uring {
            return Err(ConfigError::invalid(
                "uring_sqpoll",
                true,
                format!("needs io_driver = uring, not {}", self.io_driver),
            ));
        }
        if let Some(cpu) = self.uring_sqpoll_cpu {
            if let Some(allowed) = machine.allowed.as_ref().filter(|a| !a.contains(&cpu)) {
                return Err(ConfigError::invalid(
                    "uring_sqpoll_cpu",
                    cpu,
                    format!("not among the CPUs this process may use ({allowed:?})"),
                ));
            }
        }
        if self.shutdown_timeout_ms > MAX_MS {
            return Err(ConfigError::limit(
                "shutdown_timeout_ms",
                self.shutdown_timeout_ms,
                format!("{MAX_MS} ms (one day)"),
                "a graceful shutdown's deadline",
            ));
        }
        if self.drain_timeout_ms > MAX_MS {
            return Err(ConfigError::limit(
                "drain_timeout_ms",
                self.drain_timeout_ms,
                format!("{MAX_MS} ms (one day)"),
                "the draining phase's deadline",
            ));
        }
        validate_adaptive(self)?;
        let workers = self.planned_workers(machine);
        if let Some(m) = self.max_threads {
            let min = workers + 1;
            if m < min {
                return Err(ConfigError::invalid(
                    "max_threads",
                    m,
                    format!(
                        "the minimum is {min}: {workers} workers plus at least 1 blocking thread"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The `adaptive_*` fields (checked whether or not `adaptive` is on, so
/// that a file is refused before the controller is turned on).
pub(crate) fn validate_adaptive(c: &Config) -> Result<(), ConfigError> {
    if let Err(why) = c.adaptive_objective.parse::<crate::Objective>() {
        return Err(ConfigError::invalid(
            "adaptive_objective",
            &c.adaptive_objective,
            why.to_string(),
        ));
    }
    if c.adaptive_min_level > c.adaptive_max_level {
        return Err(ConfigError::invalid(
            "adaptive_min_level",
            c.adaptive_min_level,
            format!("above adaptive_max_level ({})", c.adaptive_max_level),
        ));
    }
    if c.adaptive_window_ms > MAX_MS {
        return Err(ConfigError::limit(
            "adaptive_window_ms",
            c.adaptive_window_ms,
            format!("{MAX_MS} ms (one day)"),
            "the controller decides once per window",
        ));
    }
    for (field, value) in [
        ("adaptive_window_ms", c.adaptive_window_ms),
        ("adaptive_up_after", u64::from(c.adaptive_up_after)),
        ("adaptive_down_after", u64::from(c.adaptive_down_after)),
    ] {
        if value == 0 {
            return Err(ConfigError::invalid(field, 0, "at least 1"));
        }
    }
    if c.adaptive_busy_below_percent > 100 {
        return Err(ConfigError::limit(
            "adaptive_busy_below_percent",
            c.adaptive_busy_below_percent,
            "100 %",
            "a busy ratio is a percentage",
        ));
    }
    Ok(())
}
