//! One worker's timers: a min-heap of deadlines over a slab of entries.
//!
//! Removal is O(1) (the slab entry goes; its heap node becomes stale and is
//! skipped by generation), and the heap is rebuilt when stale nodes
//! outnumber live ones, so cancelled timeouts cannot grow it without bound.
//! The queue sits behind a mutex in the worker's shared state: the owner
//! takes it uncontended; a task that migrated, or a thread outside the
//! runtime, can still register and cancel.

use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

#[derive(Debug)]
struct Entry {
    gen: u64,
    waker: Option<Waker>,
}

/// Identifies one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    key: usize,
    gen: u64,
}

/// Timers a worker holds before its queue first grows: the heap keeps up
/// to 64 stale nodes beside twice the live ones before it is rebuilt, so
/// with up to 64 live timers (a relay's per-connection deadlines) the
/// heap stays within 192 nodes and nothing allocates on the hot path (the
/// relay's allocation test saw the heap's growth from 4 nodes, under load).
const TIMER_ROOM: usize = 256;

#[derive(Debug)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    entries: Slab<Entry>,
    next_gen: u64,
    closed: bool,
}

impl Default for TimerQueue {
    fn default() -> TimerQueue {
        TimerQueue {
            heap: BinaryHeap::with_capacity(TIMER_ROOM),
            entries: Slab::with_capacity(TIMER_ROOM / 2),
            next_gen: 0,
            closed: false,
        }
    }
}

impl TimerQueue {
    /// Registers a deadline. `None` once the runtime shut down.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> Option<TimerKey> {
        if self.closed {
            return None;
        }
        self.next_gen += 1;
        let gen = self.next_gen;
        let key = self.entries.insert(Entry {
            gen,
            waker: Some(waker),
        });
        self.heap.push(Reverse((deadline, key, gen)));
        Some(TimerKey { key, gen })
    }

    /// Replaces the waker of a live registration.
    pub(crate) fn update(&mut self, k: TimerKey, waker: &Waker) {
        if let Some(e) = self.entries.get_mut(k.key) {
            if e.gen == k.gen {
                match &e.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => e.waker = Some(waker.clone()),
                }
            }
        }
    }

    pub(crate) fn remove(&mut self, k: TimerKey) {
        if matches!(self.entries.get(k.key), Some(e) if e.gen == k.gen) {
            self.entries.remove(k.key);
            if self.heap.len() > 64 + 2 * self.entries.len() {
                let entries = &self.entries;
                self.heap.retain(
                    |Reverse((_, key, gen))| matches!(entries.get(*key), Some(e) if e.gen == *gen),
                );
            }
        }
    }

    fn is_live(&self, key: usize, gen: u64) -> bool {
        matches!(self.entries.get(key), Some(e) if e.gen == gen)
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((d, key, gen))) = self.heap.peek().copied() {
            if self.is_live(key, gen) {
                return Some(d);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the wakers of every deadline at or before `now`.
    /// Takes the wakers of every timer due at `now`, recording how late
    /// each fired into `lateness` if given.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        out: &mut Vec<Waker>,
        lateness: Option<&crate::metrics::AtomicHistogram>,
    ) {
        while let Some(Reverse((d, key, gen))) = self.heap.peek().copied() {
            if d > now {
                break;
            }
            self.heap.pop();
            if self.is_live(key, gen) {
                if let Some(w) = self.entries.remove(key).waker {
                    out.push(w);
                    if let Some(h) = lateness {
                        h.record_single_writer(now.saturating_duration_since(d).as_nanos() as u64);
                    }
                }
            }
        }
    }

    /// Shutdown: drop every waker and refuse new timers.
    pub(crate) fn close(&mut self) -> Vec<Waker> {
        self.closed = true;
        self.heap.clear();
        self.entries.drain().filter_map(|e| e.waker).collect()
    }
}
