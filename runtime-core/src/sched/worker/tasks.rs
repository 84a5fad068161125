//! What the owner keeps for each task it owns: an id, the cell's memory,
//! and a place in the owned list that shutdown cancels from.
//!
//! Ids come from blocks of [`ID_BLOCK`] taken from the process-wide
//! counter, so a spawn on a worker reads no shared atomic. Cells come from
//! the worker's arena slab (levels with arenas) or its cell cache, and go
//! back there when freed on this thread; `alive` counts them, and the
//! shared `outstanding` count takes over when the core retires, so the
//! worker's shared half lives until the last of its tasks is freed.

use super::{bump, Core, HOLD_BIAS};
use crate::task::cache;
use crate::task::raw::TaskRef;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;

/// Task ids a worker takes from the process-wide counter at a time.
const ID_BLOCK: u64 = 4096;

impl Core {
    /// A process-unique task id, drawn from a block this worker owns.
    pub(crate) fn next_id(&self) -> u64 {
        let (mut next, end) = self.ids.get();
        if next == end {
            next = crate::sched::NEXT_ID.fetch_add(ID_BLOCK, Relaxed);
            self.ids.set((next + 1, next + ID_BLOCK));
        } else {
            self.ids.set((next + 1, end));
        }
        next
    }

    /// Memory for a task cell owned by this worker: from the arena's slab
    /// when the worker has one (a cell too large, or a full arena, falls
    /// back to the global allocator and is counted), else the cell cache.
    pub(crate) fn alloc_cell(&self, class: u8, layout: Layout) -> NonNull<u8> {
        self.alive.set(self.alive.get() + 1);
        if let Some(slab) = self.slab.as_deref() {
            if class != cache::EXACT {
                // SAFETY: this is the slab's owner thread.
                if let Some(p) = unsafe { slab.take(class as usize) } {
                    return p;
                }
            }
            slab.count_fallback();
            return cache::alloc_any(class, layout);
        }
        if class == cache::EXACT {
            return cache::alloc_any(class, layout);
        }
        // SAFETY: the cell's contract (owner_cell.rs): spawns run on the
        // owner's thread, and `take` calls no code of ours.
        unsafe { self.cells.with(|c| c.take(class)) }
    }

    /// Whether a cell of `class` can come from this worker's arena now
    /// (true without an arena: the global allocator serves).
    pub(crate) fn can_alloc(&self, class: u8) -> bool {
        match self.slab.as_deref() {
            None => true,
            // SAFETY: this is the slab's owner thread.
            Some(slab) => class != cache::EXACT && unsafe { slab.can_take(class as usize) },
        }
    }

    /// A cell owned by this worker was freed on its thread.
    ///
    /// # Safety
    /// `p` is the dead cell of a task of this worker, of this class and
    /// layout.
    pub(crate) unsafe fn free_cell(&self, p: NonNull<u8>, class: u8, layout: Layout) {
        self.alive.set(self.alive.get() - 1);
        if let Some(slab) = self.slab.as_deref() {
            if slab.contains(p.as_ptr()) {
                // SAFETY: the owner thread; a cell of this class from this
                // slab (it lies in the arena), dead (the caller's contract).
                unsafe { slab.give(p, class as usize) };
            } else {
                // SAFETY: a fallback cell from the global allocator.
                unsafe { cache::free_any(p, class, layout) };
            }
            return;
        }
        if class == cache::EXACT {
            // SAFETY: the caller's contract.
            unsafe { cache::free_any(p, class, layout) }
        } else {
            // SAFETY: the cell's contract as in `alloc_cell` (`give` calls
            // no code of ours); the caller's contract for `p`.
            unsafe { self.cells.with(|c| c.give(p, class)) }
        }
    }

    /// The core stops: hand the count of its tasks still alive to the
    /// shared counter, so that the last one freed releases the state.
    pub(super) fn retire(&self) {
        let alive = self.alive.replace(0);
        self.shared.release(HOLD_BIAS - alive);
    }

    /// Counts a new task and, unless it is stealable (those live in the
    /// locked list), links it into this worker's owned list.
    pub(crate) fn link(&self, task: TaskRef, stealable: bool) {
        if !stealable {
            // SAFETY: the cell's contract (owner_cell.rs); `push` touches
            // only the links. The task is in no list yet (`List::push`).
            unsafe { self.list.with(|l| l.push(task)) };
        }
        bump(&self.shared.counters.spawned, 1);
    }

    /// Counts a task that finished on this thread.
    pub(crate) fn count_completed(&self) {
        bump(&self.shared.counters.completed, 1);
    }

    /// Unlinks a finished non-stealable task.
    pub(crate) fn unlink(&self, task: TaskRef) {
        // SAFETY: as in `link`; `remove` ignores a task that is not linked.
        unsafe { self.list.with(|l| l.remove(task)) };
    }

    /// Links a pinned task spawned from another thread, on arrival.
    pub(super) fn link_arrival(&self, task: TaskRef) {
        // SAFETY: `link_on_arrival` was written by the spawner before the
        // inbox's mutex published the task; only this thread touches it now.
        let links = unsafe { &mut *task.header().links.get() };
        if links.link_on_arrival {
            links.link_on_arrival = false;
            // Not counted as a spawn here: the spawning thread counted it.
            // SAFETY: the cell's contract (owner_cell.rs); `push` touches
            // only the links. The task is in no list yet (`List::push`).
            unsafe { self.list.with(|l| l.push(task)) };
        }
    }
}
