use super::*;
use crate::topology::{self, Plan};

const MIN_STACK: usize = 64 * 1024;

/// The allowed CPUs, or a configuration error saying they cannot be read.
pub(crate) fn allowed_cpus() -> Result<Vec<usize>, ConfigError> {
    topology::allowed_cpus().map_err(|e| {
        ConfigError::invalid(
            "cpus",
            "(allowed set)",
            format!("cannot read this process's CPU affinity: {e}"),
        )
    })
}
const MAX_WORKERS: usize = 4096;

impl Config {
    /// Checks every field against what it accepts and against the CPUs this
    /// process may use. The error names the field, the value and why.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(&allowed_cpus()?, &topology::isolated_cpus())
    }

    /// [`Config::validate`] against a given allowed and isolated CPU set.
    pub fn validate_with(&self, allowed: &[usize], isolated: &[usize]) -> Result<(), ConfigError> {
        if let Some(w) = self.workers {
            if w == 0 {
                return Err(ConfigError::invalid(
                    "workers",
                    0,
                    "a runtime needs at least one worker",
                ));
            }
            if w > MAX_WORKERS {
                return Err(ConfigError::invalid(
                    "workers",
                    w,
                    format!("at most {MAX_WORKERS} workers"),
                ));
            }
        }
        if let Some(cpus) = &self.cpus {
            let ids = cpus.ids();
            if ids.is_empty() {
                return Err(ConfigError::invalid("cpus", "[]", "name at least one CPU"));
            }
            let allowed_list = CpuList::new(allowed.to_vec());
            for (i, c) in ids.iter().enumerate() {
                if ids[..i].contains(c) {
                    return Err(ConfigError::invalid(
                        "cpus",
                        cpus,
                        format!("CPU {c} is listed twice"),
                    ));
                }
                if !allowed.contains(c) {
                    return Err(ConfigError::invalid(
                        "cpus",
                        cpus,
                        format!("CPU {c} is outside this process's allowed CPUs ({allowed_list})"),
                    ));
                }
            }
        }
        if self.stack_size < MIN_STACK {
            return Err(ConfigError::invalid(
                "stack_size",
                self.stack_size,
                format!("a worker stack must be at least {MIN_STACK} bytes (64 KiB)"),
            ));
        }
        if self.memory_budget_percent == 0 || self.memory_budget_percent > 100 {
            return Err(ConfigError::invalid(
                "memory_budget_percent",
                self.memory_budget_percent,
                "a percentage from 1 to 100",
            ));
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
            if !allowed.contains(&cpu) {
                return Err(ConfigError::invalid(
                    "uring_sqpoll_cpu",
                    cpu,
                    format!("not among the CPUs this process may use ({allowed:?})"),
                ));
            }
        }
        let plan = Plan::new(self, allowed, isolated);
        let workers = plan.workers.len();
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
