//! The task slab: fixed-size cells carved from a worker's arena and
//! recycled, so that spawning never calls the global allocator.
//!
//! Hand-written because it is the spawn path. A freed cell holds the link
//! to the next free one (cells are at least 128 bytes), so the free lists
//! never allocate. The owner thread keeps its own lists without atomics;
//! cells freed on other threads go to a mutex-guarded list that the owner
//! takes whole when its own runs dry.

use crate::arena::Arena;
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;

/// Cell sizes. The steps below 256 bytes follow the common task cells: a
/// task header is 120 bytes, and an empty or small future's cell (152
/// bytes) in a 256-byte class left 40 % of the memory a deep queue walks
/// through unused.
pub const CLASSES: [usize; 6] = [128, 160, 192, 256, 512, 1024];
/// Alignment of every cell.
pub const ALIGN: usize = 16;
const N: usize = CLASSES.len();

/// Figures for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SlabStats {
    /// Cells handed out and not freed.
    pub cells_in_use: u64,
    /// Cells carved from the arena so far.
    pub cells_carved: u64,
    /// Allocations that went to the global allocator instead (too large
    /// for a cell, or the arena was full), as counted by the runtime.
    pub fallback_allocations: u64,
}

struct Heads([*mut u8; N]);

// SAFETY: the heads are links into the arena's memory, owned by the slab.
unsafe impl Send for Heads {}

/// One worker's slab.
pub struct Slab {
    arena: Arc<Arena>,
    /// The arena's address range, copied for `contains` on the free path.
    lo: usize,
    hi: usize,
    local: UnsafeCell<Heads>,
    remote: Mutex<Heads>,
    remote_count: AtomicUsize,
    /// Cells taken minus given on the owner thread: written only there,
    /// with plain loads and stores (no read-modify-write on the spawn
    /// path), read by the stats from anywhere.
    owner_net: AtomicI64,
    /// The same for other threads, with read-modify-writes.
    shared_net: AtomicI64,
    carved: AtomicU64,
    fallback: AtomicU64,
}

impl std::fmt::Debug for Slab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("stats", &self.stats())
            .finish()
    }
}

// SAFETY: `local` is only touched by the owner thread (the unsafe methods'
// contract); everything else is atomics or behind the mutex.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

/// Under AddressSanitizer (CI builds with `--cfg sprint_asan`), a free
/// cell is poisoned past its link word, so a task touched after its cell
/// was freed is reported, as it would be with the global allocator.
#[cfg(sprint_asan)]
mod asan {
    extern "C" {
        pub(super) fn __asan_poison_memory_region(addr: *const u8, size: usize);
        pub(super) fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
    }
}

const LINK: usize = std::mem::size_of::<*mut u8>();

/// # Safety
/// `p` is a free cell of `size` bytes (at least 128, 16-aligned) this slab
/// owns.
unsafe fn push(head: &mut *mut u8, p: NonNull<u8>, size: usize) {
    // SAFETY: the cell is free and large enough to hold a pointer.
    unsafe { p.as_ptr().cast::<*mut u8>().write(*head) };
    #[cfg(sprint_asan)]
    // SAFETY: the cell is ours and free; only its link stays addressable.
    unsafe {
        asan::__asan_poison_memory_region(p.as_ptr().add(LINK), size - LINK)
    };
    let _ = size;
    *head = p.as_ptr();
}

fn pop(head: &mut *mut u8, size: usize) -> Option<NonNull<u8>> {
    let p = NonNull::new(*head)?;
    // SAFETY: every cell on a list holds the link written by `push`.
    *head = unsafe { p.as_ptr().cast::<*mut u8>().read() };
    prefetch_cell(*head);
    #[cfg(sprint_asan)]
    // SAFETY: the cell leaves the free list: all of it is usable again.
    unsafe {
        asan::__asan_unpoison_memory_region(p.as_ptr(), size)
    };
    let _ = (size, LINK);
    Some(p)
}

/// Asks the CPU to bring the first three cache lines at `p` into its
/// cache: a task cell's header (120 bytes) and the start of its future
/// and output. Any address, null included, is allowed (for a 128-byte
/// cell the third line is its neighbour's: a wasted hint, no harm).
///
/// The slab calls it on the next cell a pop will hand out. With many tasks outstanding the free list is far larger than the
/// caches, and each pop reads the link of a cell nobody touched since it
/// was freed: without this, every spawn waits for one load from memory
/// before it can write its task, and a spawn cannot start before the last
/// pop's load came back. Fetched one spawn ahead, that load overlaps the
/// work of the spawn in between (the spawn_join_deep benchmark).
#[inline(always)]
pub fn prefetch_cell(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: prefetching is a hint that never faults, whatever the
        // address; the sse feature is part of the x86_64 baseline.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast());
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(64));
            _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(128));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Slab {
    /// A slab carving `arena`.
    pub fn new(arena: Arc<Arena>) -> Slab {
        let (lo, hi) = arena.range();
        Slab {
            arena,
            lo,
            hi,
            local: UnsafeCell::new(Heads([std::ptr::null_mut(); N])),
            remote: Mutex::new(Heads([std::ptr::null_mut(); N])),
            remote_count: AtomicUsize::new(0),
            owner_net: AtomicI64::new(0),
            shared_net: AtomicI64::new(0),
            carved: AtomicU64::new(0),
            fallback: AtomicU64::new(0),
        }
    }

    /// The arena underneath.
    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }

    fn carve(&self, class: usize) -> Option<NonNull<u8>> {
        let p = self.arena.alloc(CLASSES[class], ALIGN)?;
        self.carved.fetch_add(1, Relaxed);
        Some(p)
    }

    /// A cell of `class` on the owner thread; `None` when the arena is
    /// full.
    ///
    /// # Safety
    /// Called only on the slab's owner thread.
    pub unsafe fn take(&self, class: usize) -> Option<NonNull<u8>> {
        // SAFETY: the owner thread alone touches `local`.
        let local = unsafe { &mut *self.local.get() };
        let p = match pop(&mut local.0[class], CLASSES[class]) {
            Some(p) => Some(p),
            None => {
                if self.remote_count.load(Relaxed) > 0 {
                    let mut r = self.remote.lock();
                    for (l, h) in local.0.iter_mut().zip(r.0.iter_mut()) {
                        // Move the whole remote list over when ours is
                        // empty; else keep it for later.
                        if l.is_null() {
                            *l = std::mem::replace(h, std::ptr::null_mut());
                        }
                    }
                    self.remote_count
                        .store(r.0.iter().filter(|h| !h.is_null()).count(), Relaxed);
                }
                pop(&mut local.0[class], CLASSES[class]).or_else(|| self.carve(class))
            }
        };
        if p.is_some() {
            self.owner_add(1);
        }
        p
    }

    /// Owner thread only: a plain load and store, no locked instruction.
    fn owner_add(&self, d: i64) {
        self.owner_net
            .store(self.owner_net.load(Relaxed) + d, Relaxed);
    }

    /// Whether [`take`](Self::take) would find a cell of `class` now.
    ///
    /// # Safety
    /// Called only on the slab's owner thread.
    pub unsafe fn can_take(&self, class: usize) -> bool {
        // SAFETY: the owner thread alone touches `local`.
        let local = unsafe { &*self.local.get() };
        let arena = self.arena.stats();
        !local.0[class].is_null()
            || self.remote_count.load(Relaxed) > 0
            || arena.used + CLASSES[class] + ALIGN <= arena.capacity
    }

    /// A cell of `class` from any thread.
    pub fn take_shared(&self, class: usize) -> Option<NonNull<u8>> {
        let p = {
            let mut r = self.remote.lock();
            pop(&mut r.0[class], CLASSES[class])
        }
        .or_else(|| self.carve(class));
        if p.is_some() {
            self.shared_net.fetch_add(1, Relaxed);
        }
        p
    }

    /// Returns a cell on the owner thread.
    ///
    /// # Safety
    /// Called only on the owner thread, with a cell of `class` this slab
    /// handed out and that is not used again.
    pub unsafe fn give(&self, p: NonNull<u8>, class: usize) {
        // SAFETY: the owner thread alone touches `local`; the cell is ours.
        unsafe { push(&mut (*self.local.get()).0[class], p, CLASSES[class]) };
        self.owner_add(-1);
    }

    /// Returns a cell from any thread.
    ///
    /// # Safety
    /// A cell of `class` this slab handed out, not used again.
    pub unsafe fn give_shared(&self, p: NonNull<u8>, class: usize) {
        let mut r = self.remote.lock();
        // SAFETY: the caller's contract; the remote list is locked.
        unsafe { push(&mut r.0[class], p, CLASSES[class]) };
        self.remote_count.fetch_add(1, Relaxed);
        self.shared_net.fetch_sub(1, Relaxed);
    }

    /// Whether `p` is memory of this slab's arena.
    pub fn contains(&self, p: *const u8) -> bool {
        (self.lo..self.hi).contains(&(p as usize))
    }

    /// Counts an allocation that went to the global allocator.
    pub fn count_fallback(&self) {
        self.fallback.fetch_add(1, Relaxed);
    }

    /// The figures for the stats.
    pub fn stats(&self) -> SlabStats {
        SlabStats {
            cells_in_use: (self.owner_net.load(Relaxed) + self.shared_net.load(Relaxed)).max(0)
                as u64,
            cells_carved: self.carved.load(Relaxed),
            fallback_allocations: self.fallback.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::ArenaConfig;

    fn slab(ceiling: usize) -> Slab {
        Slab::new(Arc::new(
            Arena::new(ArenaConfig {
                ceiling,
                commit: ceiling.min(1 << 20),
                prefault: false,
                lock: false,
                huge_pages: false,
                numa_node: None,
                strict: false,
            })
            .unwrap(),
        ))
    }

    #[test]
    fn cells_are_recycled_locally_and_across_threads() {
        let s = Arc::new(slab(1 << 20));
        // SAFETY: this test thread is the owner.
        let a = unsafe { s.take(0) }.unwrap();
        // SAFETY: as above; `a` is a cell of class 0.
        unsafe { s.give(a, 0) };
        // SAFETY: owner.
        let b = unsafe { s.take(0) }.unwrap();
        assert_eq!(a, b, "a freed cell is reused");
        let addr = b.as_ptr() as usize;
        let s2 = s.clone();
        std::thread::spawn(move || {
            // SAFETY: a cell of class 0 from this slab, not used again.
            unsafe { s2.give_shared(NonNull::new(addr as *mut u8).unwrap(), 0) }
        })
        .join()
        .unwrap();
        // SAFETY: owner.
        let c = unsafe { s.take(0) }.unwrap();
        assert_eq!(
            c.as_ptr() as usize,
            addr,
            "a cell freed elsewhere comes back"
        );
        assert_eq!(s.stats().cells_in_use, 1);
        assert_eq!(s.stats().cells_carved, 1);
    }

    /// Under AddressSanitizer, a free cell is poisoned past its link, so a
    /// use after free of a task cell is reported.
    #[cfg(sprint_asan)]
    #[test]
    fn a_free_cell_is_poisoned_under_asan() {
        extern "C" {
            fn __asan_address_is_poisoned(addr: *const u8) -> i32;
        }
        let s = slab(1 << 20);
        // SAFETY: this test thread is the owner.
        let p = unsafe { s.take(1) }.unwrap();
        // SAFETY: an ASan query on memory of ours.
        assert_eq!(unsafe { __asan_address_is_poisoned(p.as_ptr().add(64)) }, 0);
        // SAFETY: owner; a cell of class 1, not used again until retaken.
        unsafe { s.give(p, 1) };
        // SAFETY: as above.
        assert_eq!(unsafe { __asan_address_is_poisoned(p.as_ptr().add(64)) }, 1);
        // SAFETY: owner.
        let q = unsafe { s.take(1) }.unwrap();
        assert_eq!(q, p);
        // SAFETY: as above.
        assert_eq!(unsafe { __asan_address_is_poisoned(q.as_ptr().add(64)) }, 0);
    }

    #[test]
    fn a_full_arena_says_so() {
        let s = slab(64 * 1024);
        let mut n = 0;
        // SAFETY: owner.
        while unsafe { s.take(N - 1) }.is_some() {
            n += 1;
        }
        assert_eq!(n, 64, "64 KiB holds 64 cells of 1 KiB");
        assert!(s.take_shared(N - 1).is_none());
    }
}
