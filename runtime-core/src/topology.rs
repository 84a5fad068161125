//! Which CPUs the process may use, and the placement plan: which worker
//! runs on which CPU, and whether it is pinned there.
//!
//! NUMA nodes, caches and cgroup limits come with the memory and tuning
//! layers; this module reads the affinity mask and the kernel's isolated
//! CPUs, which is what pinning needs.

use crate::config::{Config, IdleStrategy, Pinning, Scheduling};
use std::fmt;

/// How many CPU ids to accept when none can be read from the kernel: the
/// largest `NR_CPUS` a mainline kernel can be built with.
pub const FALLBACK_POSSIBLE_CPUS: usize = 8192;

/// How many CPU ids this machine can have: one more than the highest in
/// /sys/devices/system/cpu/possible (CPUs that may ever come online), or
/// [`FALLBACK_POSSIBLE_CPUS`] where that cannot be read. CPU lists are
/// bounded by it before they are expanded.
pub fn possible_cpus() -> usize {
    static POSSIBLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| possible_from(&s))
            .unwrap_or(FALLBACK_POSSIBLE_CPUS)
    })
}

/// The bound a `possible` file gives: its highest id plus one (`0-1` is 2).
fn possible_from(text: &str) -> Option<usize> {
    let last = text.trim().rsplit([',', '-']).next()?;
    last.parse::<usize>().ok()?.checked_add(1)
}

/// The CPUs in this process's affinity mask (that of its main thread).
/// Where affinity masks cannot be read (not Linux), every CPU the OS
/// reports.
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        thread_affinity(pid)
    }
    #[cfg(not(target_os = "linux"))]
    Ok((0..std::thread::available_parallelism()?.get()).collect())
}

/// The affinity mask of one thread (or process), read from the kernel.
#[cfg(target_os = "linux")]
pub fn thread_affinity(tid: libc::pid_t) -> std::io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, which outlives the call.
    let rc =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, and `set` is initialised.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// The calling thread's kernel id (Linux's gettid); 0 where threads have
/// no such id visible to affinity calls.
pub(crate) fn current_tid() -> i32 {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions.
    return unsafe { libc::gettid() };
    #[cfg(not(target_os = "linux"))]
    0
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
                t.parse::<crate::config::CpuList>().ok()
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
        let pinned = match config.pinning {
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

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus = crate::config::CpuList::new(self.cpus.clone());
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
    fn the_possible_bound_is_the_highest_id_plus_one() {
        assert_eq!(possible_from("0-1\n"), Some(2));
        assert_eq!(possible_from("0"), Some(1));
        assert_eq!(possible_from("0-3,8-11"), Some(12));
        assert_eq!(possible_from(""), None);
        assert_eq!(possible_from("0-18446744073709551615"), None);
        assert!(possible_cpus() > *allowed_cpus().unwrap().iter().max().unwrap());
    }
}
