//! A worker's arena: one mapping, reserved up to the worker's share of the
//! budget and committed as far as the level's preallocation says, growing
//! within the ceiling; prefaulted, locked, on huge pages and bound to the
//! worker's NUMA node where the level asks and the machine allows. What
//! could not be had is a note (or, in strict mode, an error).
//!
//! Allocation is a bump pointer (atomic, so any thread may carve from it);
//! the task slab on top recycles cells, so the arena itself never frees.
//!
//! Growth happens on the spawn path (the spawn that carves past the
//! committed end commits, prefaults and locks the next stretch), so it is
//! made in large steps ([`grow_target`]): by half of what is committed, at
//! least [`MIN_GROWTH`], in whole huge pages (and transparent huge pages
//! are asked for at every level). A worker that reaches 1 M small tasks
//! (160 MiB of cells) from Standard's 4 MiB grows 9 times, not 156; once its cells are carved they are recycled, and spawning at
//! that depth takes no page fault (at the levels that prefault, not even
//! the first time, outside those steps).

use parking_lot::Mutex;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::*};

/// What an arena should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArenaConfig {
    /// Address space reserved: the most it can ever commit.
    pub ceiling: usize,
    /// Bytes committed at start.
    pub commit: usize,
    /// Touch every committed page at start (and when growing).
    pub prefault: bool,
    /// mlock the committed pages.
    pub lock: bool,
    /// Explicit huge pages for the preallocation if reserved (a note, or
    /// in strict mode an error, if not). Either way the arena asks for
    /// transparent huge pages (madvise) for the rest.
    pub huge_pages: bool,
    /// Bind the memory to this NUMA node.
    pub numa_node: Option<usize>,
    /// Fail instead of degrading.
    pub strict: bool,
}

/// An arena could not be set up as asked (strict mode) or at all.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The configuration is impossible.
    #[error("invalid arena: {0}")]
    Invalid(String),
    /// A system call failed.
    #[error("{what}: {source}")]
    Os {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// Strict mode, and a setting could not be applied.
    #[error("strict: {0}")]
    Strict(String),
}

/// Figures for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArenaStats {
    /// Bytes reserved (the ceiling).
    pub capacity: usize,
    /// Bytes committed.
    pub committed: usize,
    /// Bytes handed out.
    pub used: usize,
    /// Bytes locked in RAM.
    pub locked: usize,
    /// Bytes on explicit huge pages (transparent ones are the kernel's
    /// choice and are counted in /proc/self/smaps, not here).
    pub huge_page_bytes: usize,
    /// Times the arena grew past what it committed at start.
    pub growths: u64,
}

const MIB: usize = 1 << 20;
const HUGE: usize = 2 * MIB;

/// The least an arena grows by at a time.
pub const MIN_GROWTH: usize = 4 * MIB;

/// What an arena that has committed `committed` bytes (of `reserved`)
/// commits when an allocation ends at `end`: `end`, or half as much again
/// as it has (at least [`MIN_GROWTH`] more) if that is further, rounded up
/// to whole 2 MiB huge pages, within the reservation.
pub fn grow_target(committed: usize, end: usize, reserved: usize) -> usize {
    let step = (committed / 2).max(MIN_GROWTH);
    end.max(committed.saturating_add(step))
        .next_multiple_of(HUGE)
        .min(reserved)
}

/// One worker's memory.
#[derive(Debug)]
pub struct Arena {
    base: NonNull<u8>,
    reserved: usize,
    committed: AtomicUsize,
    used: AtomicUsize,
    locked: AtomicUsize,
    /// Bytes prefaulted and locked so far.
    prepared: AtomicUsize,
    growths: AtomicUsize,
    grow: Mutex<()>,
    config: ArenaConfig,
    /// Bytes at the start on explicit huge pages.
    huge_bytes: usize,
    page: usize,
    notes: Vec<String>,
}

// SAFETY: the mapping is plain memory; the bump pointer and counters are
// atomics, growth is behind a mutex, and the bytes handed out belong to
// whoever received them.
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

use crate::os::{self, page_size};

/// Whether this process runs under AddressSanitizer (its runtime is
/// linked in): it intercepts mlockall as a no-op, and its shadow memory
/// could not be locked anyway.
pub fn under_asan() -> bool {
    // The runtime is linked statically (its symbols are not dynamic), so
    // look for its shadow gap: on x86_64 Linux an inaccessible mapping
    // from 0x8fff7000 between the low and high shadow.
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| {
            m.lines()
                .any(|l| l.starts_with("8fff7000-2008fff7000 ---p"))
        })
        .unwrap_or(false)
}

/// Free explicit huge pages (2 MiB), from /proc/meminfo.
pub fn free_huge_pages() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("HugePages_Free:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

impl Arena {
    /// Reserves, commits and sets up an arena as `config` says.
    pub fn new(config: ArenaConfig) -> Result<Arena, ArenaError> {
        if config.ceiling == 0 {
            return Err(ArenaError::Invalid("a ceiling of 0 bytes".into()));
        }
        if config.commit > config.ceiling {
            return Err(ArenaError::Invalid(format!(
                "commit {} bytes above the ceiling {} bytes",
                config.commit, config.ceiling
            )));
        }
        let page = page_size();
        let mut notes = Vec::new();
        let degrade = |what: String, notes: &mut Vec<String>| -> Result<(), ArenaError> {
            if config.strict {
                Err(ArenaError::Strict(what))
            } else {
                notes.push(what);
                Ok(())
            }
        };
        // Reserve the ceiling, starting 2 MiB-aligned so huge pages can
        // back its start, with no access: address space, not memory.
        let reserved = config.ceiling.next_multiple_of(page);
        let base = os::reserve(reserved, HUGE).map_err(|source| ArenaError::Os {
            what: format!("reserving {reserved} bytes of address space"),
            source,
        })?;
        // From here on, dropping the arena returns the reservation, so an
        // early strict-mode error leaks nothing.
        let mut arena = Arena {
            // SAFETY: the reservation succeeded, so the address is not null.
            base: unsafe { NonNull::new_unchecked(base) },
            reserved,
            committed: AtomicUsize::new(0),
            used: AtomicUsize::new(0),
            locked: AtomicUsize::new(0),
            prepared: AtomicUsize::new(0),
            growths: AtomicUsize::new(0),
            grow: Mutex::new(()),
            config: config.clone(),
            huge_bytes: 0,
            page,
            notes: Vec::new(),
        };
        let mut huge_bytes = 0;
        if config.huge_pages {
            // Explicit huge pages back the preallocated part, if that many
            // are reserved; the rest (and the fallback) gets transparent
            // huge pages.
            let need = config.commit.next_multiple_of(HUGE);
            let free = free_huge_pages();
            if need > 0 && need <= reserved && free * HUGE >= need {
                // SAFETY: the unused, 2 MiB-aligned start of our own
                // reservation.
                match unsafe { os::map_huge(base, need) } {
                    Ok(()) => huge_bytes = need,
                    Err(e) => degrade(
                        format!(
                            "explicit huge pages refused ({e}): transparent huge pages instead"
                        ),
                        &mut notes,
                    )?,
                }
            } else if need > 0 {
                degrade(
                    format!(
                        "no explicit huge pages reserved for the {} MiB preallocation (HugePages_Free = {free}; vm.nr_hugepages reserves them): transparent huge pages (madvise) instead",
                        need / MIB
                    ),
                    &mut notes,
                )?;
            }
            // SAFETY: advice on our own reservation, past the huge part.
            let r = unsafe { os::advise_huge(base.add(huge_bytes), reserved - huge_bytes) };
            if let (Err(e), true) = (r, reserved > huge_bytes) {
                degrade(format!("transparent huge pages refused ({e})"), &mut notes)?;
            }
        } else {
            // Transparent huge pages all the same, where the kernel gives
            // them (best effort, nothing asked was refused): the slab walks
            // through its cells, and with many tasks outstanding 4 KiB
            // pages cost a TLB miss every 25 cells (spawn_join_deep at
            // Standard: 0.98 of glommio's time per task on 4 KiB pages,
            // 0.70 on huge ones). Growth is in whole huge pages.
            // SAFETY: advice on our own reservation.
            let _ = unsafe { os::advise_huge(base, reserved) };
        }
        arena.huge_bytes = huge_bytes;
        *arena.committed.get_mut() = huge_bytes;
        if let Some(node) = config.numa_node {
            if let Err(why) = arena.bind(node) {
                degrade(why, &mut notes)?;
            }
        }
        arena.notes = notes;
        let commit = config.commit.next_multiple_of(page).min(reserved);
        if let Err(e) = arena.commit_to(commit) {
            if config.strict {
                return Err(ArenaError::Strict(e));
            }
            arena.notes.push(e);
        }
        Ok(arena)
    }

    fn bind(&self, node: usize) -> Result<(), String> {
        if cfg!(target_os = "linux")
            && !std::path::Path::new(&format!("/sys/devices/system/node/node{node}")).exists()
        {
            return Err(format!(
                "NUMA node {node} does not exist here: memory not bound"
            ));
        }
        // SAFETY: the whole of our own reservation.
        let r = unsafe { os::bind(self.base.as_ptr(), self.reserved, node) };
        if let Err(e) = r {
            return Err(format!(
                "binding the arena to NUMA node {node} failed ({e})"
            ));
        }
        Ok(())
    }

    /// The NUMA node the kernel's memory policy binds the arena to, as
    /// get_mempolicy reports it; `None` without a binding policy.
    pub fn bound_node(&self) -> io::Result<Option<usize>> {
        os::bound_node(self.base.as_ptr())
    }

    /// Commits (and prefaults, locks) up to `to` bytes. Errors are the
    /// degradations, as text.
    fn commit_to(&self, to: usize) -> Result<(), String> {
        let _g = self.grow.lock();
        let to = to.min(self.reserved);
        {
            let from = self.committed.load(Acquire);
            if to > from {
                // SAFETY: [from, to) lies inside our reservation.
                let start = unsafe { self.base.as_ptr().add(from) };
                // SAFETY: as above.
                if let Err(e) = unsafe { os::commit(start, to - from) } {
                    return Err(format!("committing {} bytes failed ({e})", to - from));
                }
                self.committed.store(to, Release);
            }
        }
        let from = self.prepared.load(Relaxed);
        if to <= from {
            return Ok(());
        }
        self.prepared.store(to, Relaxed);
        // SAFETY: [from, to) is committed memory of our mapping.
        let start = unsafe { self.base.as_ptr().add(from) };
        let len = to - from;
        if self.config.prefault {
            self.prefault(start, len);
        }
        if self.config.lock {
            // SAFETY: locking committed pages of our own mapping.
            if let Err(e) = unsafe { os::lock(start, len) } {
                return Err(format!(
                    "mlock of {} KiB refused ({e}; RLIMIT_MEMLOCK = {}, and no CAP_IPC_LOCK to pass it): the arena is not locked",
                    len / 1024,
                    os::memlock_limit()
                ));
            }
            self.locked.fetch_add(len, Relaxed);
        }
        Ok(())
    }

    /// [`commit_to`](Self::commit_to) past the start's commitment,
    /// counted once per step taken (a thread that finds the step already
    /// taken by another counts nothing).
    fn grow_to(&self, to: usize) -> Result<(), String> {
        if to > self.committed.load(Acquire) {
            self.growths.fetch_add(1, Relaxed);
        }
        self.commit_to(to)
    }

    fn prefault(&self, start: *mut u8, len: usize) {
        // SAFETY: committed pages of our own mapping.
        if unsafe { os::populate(start, len) } {
            return;
        }
        let mut off = 0;
        while off < len {
            // SAFETY: a committed, writable page of our mapping; a volatile
            // write of zero to fresh anonymous memory changes nothing.
            unsafe { std::ptr::write_volatile(start.add(off), 0) };
            off += self.page;
        }
    }

    /// `size` bytes aligned to `align` (a power of two, at most a page), or
    /// `None` once the ceiling is reached.
    pub fn alloc(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= self.page);
        let mut cur = self.used.load(Relaxed);
        loop {
            let start = cur.next_multiple_of(align);
            let end = start.checked_add(size)?;
            if end > self.reserved {
                return None;
            }
            match self.used.compare_exchange_weak(cur, end, AcqRel, Relaxed) {
                Ok(_) => {
                    let committed = self.committed.load(Acquire);
                    if end > committed {
                        let to = grow_target(committed, end, self.reserved);
                        if let Err(e) = self.grow_to(to) {
                            tracing::warn!(error = %e, "growing an arena");
                            if self.committed.load(Acquire) < end {
                                return None;
                            }
                        }
                    }
                    // SAFETY: [start, end) is inside the committed mapping.
                    return Some(unsafe { NonNull::new_unchecked(self.base.as_ptr().add(start)) });
                }
                Err(now) => cur = now,
            }
        }
    }

    /// The reserved address range, `[start, end)`.
    pub fn range(&self) -> (usize, usize) {
        let b = self.base.as_ptr() as usize;
        (b, b + self.reserved)
    }

    /// Whether `p` points into this arena.
    pub fn contains(&self, p: *const u8) -> bool {
        let b = self.base.as_ptr() as usize;
        (b..b + self.reserved).contains(&(p as usize))
    }

    /// The figures for the stats.
    pub fn stats(&self) -> ArenaStats {
        ArenaStats {
            capacity: self.reserved,
            committed: self.committed.load(Relaxed),
            used: self.used.load(Relaxed),
            locked: self.locked.load(Relaxed),
            huge_page_bytes: self.huge_bytes,
            growths: self.growths.load(Relaxed) as u64,
        }
    }

    /// What could not be had, in words.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ArenaConfig {
        &self.config
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: the whole mapping is ours; nothing handed out outlives
        // the arena (the slab and the pools hold an Arc to it).
        unsafe {
            if self.locked.load(Relaxed) > 0 {
                os::unlock(self.base.as_ptr(), self.reserved);
            }
            os::release(self.base.as_ptr(), self.reserved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ceiling: usize, commit: usize) -> ArenaConfig {
        ArenaConfig {
            ceiling,
            commit,
            prefault: false,
            lock: false,
            huge_pages: false,
            numa_node: None,
            strict: false,
        }
    }

    #[test]
    fn commits_what_it_is_told_and_grows_within_the_ceiling() {
        let a = Arena::new(cfg(8 * MIB, MIB)).unwrap();
        assert_eq!(a.stats().committed, MIB);
        assert_eq!(a.stats().capacity, 8 * MIB);
        let p = a.alloc(3 * MIB / 2, 64).unwrap();
        assert!(a.contains(p.as_ptr()));
        // SAFETY: the allocation is 1.5 MiB, committed and ours.
        unsafe { std::ptr::write_bytes(p.as_ptr(), 7, 3 * MIB / 2) };
        assert!(a.stats().committed >= 3 * MIB / 2);
        assert!(a.alloc(7 * MIB, 64).is_none(), "the ceiling holds");
        assert!(a.alloc(MIB, 4096).is_some());
    }

    #[test]
    fn it_grows_by_half_of_what_it_has_in_whole_huge_pages() {
        assert_eq!(
            grow_target(MIB, MIB + 1, 64 * MIB),
            6 * MIB,
            "at least 4 MiB more"
        );
        assert_eq!(grow_target(16 * MIB, 16 * MIB + 1, 64 * MIB), 24 * MIB);
        assert_eq!(
            grow_target(24 * MIB, 40 * MIB + 1, 64 * MIB),
            42 * MIB,
            "past the step, to the allocation"
        );
        assert_eq!(
            grow_target(48 * MIB, 48 * MIB + 1, 64 * MIB),
            64 * MIB,
            "within the ceiling"
        );
        let a = Arena::new(cfg(256 * MIB, 4 * MIB)).unwrap();
        let mut seen = vec![a.stats().committed];
        // Carve 128 MiB in cells of 256 bytes: 4 -> 8 -> 12 -> 18 -> 28
        // -> 42 -> 64 -> 96 -> 144 MiB, eight steps (1 MiB steps took 124).
        for _ in 0..(128 * MIB / 256) {
            a.alloc(256, 16).unwrap();
            let c = a.stats().committed;
            if c != *seen.last().unwrap() {
                seen.push(c);
            }
        }
        let mib: Vec<usize> = seen.iter().map(|c| c / MIB).collect();
        assert_eq!(mib, [4, 8, 12, 18, 28, 42, 64, 96, 144]);
        assert_eq!(a.stats().growths, 8);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(matches!(Arena::new(cfg(0, 0)), Err(ArenaError::Invalid(_))));
        assert!(matches!(
            Arena::new(cfg(MIB, 2 * MIB)),
            Err(ArenaError::Invalid(_))
        ));
    }

    #[test]
    fn a_missing_numa_node_degrades_or_fails_when_strict() {
        let mut c = cfg(MIB, MIB);
        c.numa_node = Some(999);
        let a = Arena::new(c.clone()).unwrap();
        assert!(
            a.notes()[0].contains("NUMA node 999 does not exist"),
            "{:?}",
            a.notes()
        );
        c.strict = true;
        assert!(matches!(Arena::new(c), Err(ArenaError::Strict(_))));
    }

    #[test]
    fn binding_to_node_0_is_what_the_kernel_reports() {
        let mut c = cfg(MIB, MIB);
        c.numa_node = Some(0);
        let a = Arena::new(c).unwrap();
        assert!(a.notes().is_empty(), "{:?}", a.notes());
        assert_eq!(a.bound_node().unwrap(), Some(0));
        let unbound = Arena::new(cfg(MIB, MIB)).unwrap();
        assert_eq!(unbound.bound_node().unwrap(), None);
    }
}
