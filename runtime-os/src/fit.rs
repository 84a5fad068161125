//! Whether a level fits in memory, decided before anything is committed
//! or locked.
//!
//! Turbo committed and locked 95 % of a 64 MiB cgroup, and the kernel
//! killed the process at start without a word. Now the runtime first adds
//! up what it would make resident at start:
//! - the process's resident memory now (`/proc/self/statm`);
//! - each worker's arena preallocation, when it is prefaulted or locked
//!   (the I/O drivers' buffer pools are carved from it);
//! - under `mlockall` (`lock_memory = all`), every thread stack in full:
//!   `MCL_FUTURE` faults in each new mapping.
//!
//! That must fit in the memory limit (the cgroup's, the tightest over its
//! ancestors, else RAM) less a headroom for the rest of the process: a
//! quarter of the limit, at least 16 MiB. The arenas' ceilings are held
//! to the same room. What does not fit degrades, each step with its
//! reason in the memory report: the arenas commit less (down to nothing
//! preallocated), then `mlockall` is dropped. With `strict` the runtime
//! refuses to start instead, with an error naming the limit, where it
//! came from, and what the level needs. After the start, `health()`
//! compares the process's resident memory with the same limit.

use std::fmt;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;
const PAGE: u64 = 4096;
/// The least headroom left for the rest of the process.
pub const MIN_HEADROOM: u64 = 16 * MIB;

/// Where the memory limit came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitSource {
    /// A cgroup's limit file (v1 `memory.limit_in_bytes`, v2 `memory.max`).
    Cgroup(PathBuf),
    /// The machine's RAM (`/proc/meminfo`): no tighter cgroup limit.
    Ram,
}

/// The memory the process may use before the kernel kills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Where it was read.
    pub from: LimitSource,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            LimitSource::Cgroup(p) => write!(
                f,
                "the cgroup memory limit {} MiB ({})",
                self.bytes / MIB,
                p.display()
            ),
            LimitSource::Ram => write!(f, "RAM {} MiB (/proc/meminfo)", self.bytes / MIB),
        }
    }
}

impl MemoryLimit {
    /// The tighter of RAM and the cgroup limit the budget was read from.
    pub fn of(budget: &sprint_alloc::budget::Budget) -> MemoryLimit {
        match &budget.cgroup_limit {
            Some((l, p)) if *l < budget.ram => MemoryLimit {
                bytes: *l,
                from: LimitSource::Cgroup(p.clone()),
            },
            _ => MemoryLimit {
                bytes: budget.ram,
                from: LimitSource::Ram,
            },
        }
    }

    /// What is left free for the rest of the process: a quarter of the
    /// limit, at least [`MIN_HEADROOM`] (all of a smaller limit).
    pub fn headroom(&self) -> u64 {
        (self.bytes / 4).max(MIN_HEADROOM).min(self.bytes)
    }

    /// What the runtime may make resident, the process's present
    /// resident memory included.
    pub fn room(&self) -> u64 {
        self.bytes - self.headroom()
    }
}

/// The process's resident memory in bytes (`/proc/self/statm`; `None`
/// where there is no procfs).
#[cfg(unix)]
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(PAGE))
}

/// The process's resident memory: not read on this platform.
#[cfg(not(unix))]
pub fn resident_bytes() -> Option<u64> {
    None
}

/// The process's locked memory in bytes (`VmLck` in /proc/self/status:
/// the size of every locked mapping, touched or not); `None` where there
/// is no procfs.
pub fn locked_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmLck:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a level would make resident at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// The process's resident memory now.
    pub(crate) rss: u64,
    /// Workers (one arena each).
    pub(crate) workers: u64,
    /// Threads started with the runtime (workers and the first blocking
    /// thread), and each one's stack.
    pub(crate) threads: u64,
    pub(crate) stack: u64,
    /// Each arena's preallocation, and whether it is made resident
    /// (prefaulted or locked).
    pub(crate) commit: u64,
    pub(crate) resident_commit: bool,
    /// `mlockall`.
    pub(crate) lock_all: bool,
}

impl Demand {
    fn stacks(&self) -> u64 {
        if self.lock_all {
            self.threads * self.stack
        } else {
            0
        }
    }

    fn arenas(&self) -> u64 {
        if self.resident_commit || self.lock_all {
            self.workers * self.commit
        } else {
            0
        }
    }

    fn total(&self) -> u64 {
        self.rss + self.stacks() + self.arenas()
    }
}

impl fmt::Display for Demand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} MiB (resident now {} MiB, arenas {} x {} MiB{}, stacks {} MiB)",
            self.total().div_ceil(MIB),
            self.rss.div_ceil(MIB),
            self.workers,
            self.commit / MIB,
            if self.arenas() > 0 {
                " resident"
            } else {
                " not resident"
            },
            self.stacks().div_ceil(MIB)
        )
    }
}

/// What the start may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fitted {
    /// Each arena's preallocation.
    pub(crate) commit: u64,
    /// `mlockall` or not.
    pub(crate) lock_all: bool,
    /// The most all arenas together may reach.
    pub(crate) arena_room: u64,
    pub(crate) notes: Vec<String>,
}

/// Fits `d` under `limit`'s room: unchanged if it fits; else an error
/// (`strict`) or less preallocation, then no `mlockall`, with the reasons.
pub(crate) fn fit(
    limit: &MemoryLimit,
    d: &Demand,
    strict: bool,
) -> Result<Fitted, crate::memory::MemoryError> {
    let room = limit.room();
    let headroom = limit.headroom();
    let left = |d: &Demand| room.saturating_sub(d.rss + d.stacks());
    if d.total() <= room {
        return Ok(Fitted {
            commit: d.commit,
            lock_all: d.lock_all,
            arena_room: left(d),
            notes: vec![format!(
                "start-up memory: needs {d}, within the {} MiB that {limit} leaves after a headroom of {} MiB",
                room / MIB,
                headroom / MIB
            )],
        });
    }
    let refusal = crate::memory::MemoryError::DoesNotFit {
        demand: d.clone(),
        limit: limit.clone(),
    };
    if strict {
        return Err(refusal);
    }
    let why = refusal.to_string();
    let mut d = d.clone();
    let mut notes = Vec::new();
    if d.lock_all && d.rss + d.stacks() > room {
        d.lock_all = false;
        notes.push(format!("{why}: mlockall dropped"));
    }
    if d.total() > room {
        let each = left(&d) / d.workers.max(1) / PAGE * PAGE;
        notes.push(format!(
            "{why}: each arena preallocates {} MiB instead of {} MiB",
            each / MIB,
            d.commit / MIB
        ));
        d.commit = d.commit.min(each);
    }
    Ok(Fitted {
        commit: d.commit,
        lock_all: d.lock_all,
        arena_room: left(&d),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup(bytes: u64) -> MemoryLimit {
        MemoryLimit {
            bytes,
            from: LimitSource::Cgroup("/cg/memory.limit_in_bytes".into()),
        }
    }

    fn turbo(rss: u64) -> Demand {
        Demand {
            rss,
            workers: 2,
            threads: 3,
            stack: 256 << 10,
            commit: 64 * MIB,
            resident_commit: true,
            lock_all: true,
        }
    }

    #[test]
    fn the_headroom_is_a_quarter_and_at_least_16_mib() {
        assert_eq!(cgroup(64 * MIB).headroom(), 16 * MIB);
        assert_eq!(cgroup(1024 * MIB).headroom(), 256 * MIB);
        assert_eq!(cgroup(8 * MIB).room(), 0);
    }

    #[test]
    fn turbo_in_64_mib_degrades_or_refuses_when_strict() {
        let l = cgroup(64 * MIB);
        let e = fit(&l, &turbo(8 * MIB), true).unwrap_err().to_string();
        assert!(
            e.contains("the cgroup memory limit 64 MiB (/cg/memory.limit_in_bytes)"),
            "{e}"
        );
        assert!(e.contains("needs 137 MiB"), "{e}");
        let f = fit(&l, &turbo(8 * MIB), false).unwrap();
        assert!(f.lock_all, "the stacks fit: {f:?}");
        // 48 MiB of room, 8 resident, 0.75 of stacks: 19.5 MiB each.
        let left = 48 * MIB - 8 * MIB - 3 * (256 << 10);
        assert_eq!(f.commit, left / 2 / PAGE * PAGE);
        assert_eq!(f.arena_room, left);
        assert!(
            f.notes[0].contains("each arena preallocates 19 MiB instead of 64 MiB"),
            "{f:?}"
        );
        assert!(turbo(8 * MIB).total() > 48 * MIB);
    }

    #[test]
    fn a_process_that_already_fills_the_room_drops_the_lock_and_the_preallocation() {
        let f = fit(&cgroup(64 * MIB), &turbo(60 * MIB), false).unwrap();
        assert!(!f.lock_all);
        assert_eq!((f.commit, f.arena_room), (0, 0));
        assert_eq!(f.notes.len(), 2, "{f:?}");
    }

    #[test]
    fn what_fits_is_unchanged() {
        let d = turbo(8 * MIB);
        let f = fit(&cgroup(1024 * MIB), &d, true).unwrap();
        assert_eq!((f.commit, f.lock_all), (d.commit, true));
        assert!(
            f.notes[0].starts_with("start-up memory: needs 137 MiB"),
            "{f:?}"
        );
        // Nothing made resident at start: only the present RSS counts.
        let lazy = Demand {
            resident_commit: false,
            lock_all: false,
            ..d
        };
        assert_eq!(lazy.total(), 8 * MIB);
    }
}
