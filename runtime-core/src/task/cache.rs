//! A worker's cache of freed task cells, by size class.
//!
//! Hand-written because it is the hot path: glibc's per-thread cache holds
//! seven blocks per size, so a burst of spawns (a relay fanning out one
//! message to sixteen subscribers, or the spawn+join benchmark's batches)
//! spills into `_int_free`/`_int_malloc`, which cost a third of a spawn.
//! Cells of the common size classes are allocated with the class's layout;
//! a cell freed on its owner's thread goes back to the owner's cache
//! (bounded), and any other is returned to the global allocator. The memory
//! issue replaces the backing allocation with the worker's arena.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Cell sizes served from the cache.
pub(crate) const CLASSES: [usize; sprint_alloc::slab::CLASSES.len()] = sprint_alloc::slab::CLASSES;
/// Alignment of every cached cell.
pub(crate) const ALIGN: usize = sprint_alloc::slab::ALIGN;
/// Cells kept per class at most.
const KEEP: usize = 1024;
/// Marks a cell allocated with its exact layout (too big or too aligned).
pub(crate) const EXACT: u8 = u8::MAX;

/// The size class for a cell layout, or [`EXACT`].
pub(crate) const fn class_of(layout: Layout) -> u8 {
    if layout.align() > ALIGN {
        return EXACT;
    }
    let mut i = 0;
    while i < CLASSES.len() {
        if layout.size() <= CLASSES[i] {
            return i as u8;
        }
        i += 1;
    }
    EXACT
}

pub(crate) fn class_layout(class: u8) -> Layout {
    // SAFETY: the sizes are non-zero multiples of the power-of-two ALIGN.
    unsafe { Layout::from_size_align_unchecked(CLASSES[class as usize], ALIGN) }
}

/// Allocates a cell of `class` (not EXACT) from the global allocator.
pub(crate) fn alloc_class(class: u8) -> NonNull<u8> {
    let layout = class_layout(class);
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Allocates a cell outside any worker's cache.
pub(crate) fn alloc_any(class: u8, layout: Layout) -> NonNull<u8> {
    if class != EXACT {
        return alloc_class(class);
    }
    // SAFETY: a task cell always has a non-zero size (its header).
    let p = unsafe { alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a cell outside any worker's cache.
///
/// # Safety
/// `p` came from [`alloc_any`] or a cache with this class and layout, and is
/// not used again.
pub(crate) unsafe fn free_any(p: NonNull<u8>, class: u8, layout: Layout) {
    if class == EXACT {
        // SAFETY: the caller's contract.
        unsafe { alloc::dealloc(p.as_ptr(), layout) }
    } else {
        // SAFETY: the caller's contract.
        unsafe { free_class(p, class) }
    }
}

/// Frees a cell of `class` (not EXACT) to the global allocator.
///
/// # Safety
/// `p` came from [`alloc_class`] with the same class and is not used again.
pub(crate) unsafe fn free_class(p: NonNull<u8>, class: u8) {
    // SAFETY: the caller's contract.
    unsafe { alloc::dealloc(p.as_ptr(), class_layout(class)) }
}

/// The cache itself; owned by one worker's core.
#[derive(Debug, Default)]
pub(crate) struct CellCache {
    free: [Vec<NonNull<u8>>; CLASSES.len()],
}

impl CellCache {
    pub(crate) fn take(&mut self, class: u8) -> NonNull<u8> {
        match self.free[class as usize].pop() {
            Some(p) => p,
            None => alloc_class(class),
        }
    }

    /// # Safety
    /// `p` is a dead cell of `class`, allocated by [`alloc_class`].
    pub(crate) unsafe fn give(&mut self, p: NonNull<u8>, class: u8) {
        let list = &mut self.free[class as usize];
        if list.len() < KEEP {
            list.push(p);
        } else {
            // SAFETY: the caller's contract.
            unsafe { free_class(p, class) }
        }
    }
}

impl Drop for CellCache {
    fn drop(&mut self) {
        for (class, list) in self.free.iter_mut().enumerate() {
            for p in list.drain(..) {
                // SAFETY: every cached pointer is a dead cell of its class.
                unsafe { free_class(p, class as u8) }
            }
        }
    }
}
