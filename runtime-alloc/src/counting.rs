//! Allocation accounting for tests and benchmarks: a global allocator that
//! forwards to the system allocator and counts every allocation, so that a
//! test can show a path performs none.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sprint_alloc::counting::Counting = sprint_alloc::counting::Counting;
//! let before = sprint_alloc::counting::allocations();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// The counting allocator (install it with `#[global_allocator]`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every call forwards to the system allocator with the caller's
// arguments; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Allocations (and reallocations) through [`Counting`] so far, on every
/// thread.
pub fn allocations() -> u64 {
    ALLOCS.load(Relaxed)
}
