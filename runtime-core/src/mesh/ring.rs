//! One ring of the mesh: a bounded single-producer single-consumer queue
//! between two workers (a Lamport queue with cached indices, as Seastar's
//! per-core queues and glommio's shared channels are built).
//!
//! Two counters say who owns which slot: `tail` (written only by the
//! producer) counts the slots ever filled and published, `head` (written
//! only by the consumer) the slots ever emptied. Slots in `head..tail` hold
//! messages; the rest are free. Each side keeps a private copy of the
//! other's counter and reads the shared one only when its copy says the
//! ring is full (producer) or empty (consumer), so a ring in steady flow
//! costs each side a plain store per publish and a cache miss per lap, not
//! per message.
//!
//! The producer writes messages into slots and moves its *private* tail;
//! [`publish`](Ring::publish) makes them visible with one release store,
//! so a turn's burst of sends costs one store and one cache-line transfer.
//! The consumer moves the shared head at every pop (a plain release store:
//! the producer reads it only when it finds the ring full).
//!
//! Nothing here sleeps or wakes: `mesh/bell.rs` holds the handshake that
//! tells a waiting side to look again.

use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::{AtomicUsize, Ordering::*};
use std::mem::MaybeUninit;

/// Keeps the two ends' counters on cache lines of their own (128 bytes:
/// the adjacent-line prefetcher pairs 64-byte lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The producer's private view.
#[derive(Debug)]
struct Prod {
    /// The next slot it writes (published or not).
    tail: usize,
    /// The consumer's head as last read.
    head_seen: usize,
    /// What it last stored into the shared `tail`.
    published: usize,
}

/// The consumer's private view.
#[derive(Debug)]
struct Cons {
    /// The next slot it reads.
    head: usize,
    /// The producer's published tail as last read.
    tail_seen: usize,
}

/// A bounded SPSC ring. The producer and consumer methods are `unsafe`:
/// each side is one thread at a time, never two (see their contracts);
/// the mesh upholds this with `!Send` port types, one per worker.
pub(crate) struct Ring<T> {
    head: Padded<AtomicUsize>,
    tail: Padded<AtomicUsize>,
    prod: Padded<UnsafeCell<Prod>>,
    cons: Padded<UnsafeCell<Cons>>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: a message moves from the producer's thread to the consumer's, so
// `T: Send` is needed and enough; the private views are touched only by
// their own side (the unsafe methods' contracts), and the slots only by the
// side that owns them under the head/tail protocol.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above; moving the ring moves its messages with it.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<T> Ring<T> {
    /// A ring of `capacity` slots, a power of two (the mesh rounds up).
    pub(crate) fn new(capacity: usize) -> Ring<T> {
        debug_assert!(capacity.is_power_of_two());
        Ring {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            prod: Padded(UnsafeCell::new(Prod {
                tail: 0,
                head_seen: 0,
                published: 0,
            })),
            cons: Padded(UnsafeCell::new(Cons {
                head: 0,
                tail_seen: 0,
            })),
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: capacity - 1,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Writes `value` into the next free slot, unpublished; gives it back
    /// if the ring is full (published or not).
    ///
    /// # Safety
    /// Only the ring's producer calls the producer methods (`push`,
    /// `publish`, `unpublished`), one call at a time.
    pub(crate) unsafe fn push(&self, value: T) -> Result<(), T> {
        self.prod.with_mut(|p| {
            // SAFETY: the producer's view, reached only by the producer
            // (the contract), one call at a time.
            let p = unsafe { &mut *p };
            if p.tail.wrapping_sub(p.head_seen) == self.slots.len() {
                p.head_seen = self.head.load(Acquire);
                if p.tail.wrapping_sub(p.head_seen) == self.slots.len() {
                    return Err(value);
                }
            }
            self.slots[p.tail & self.mask].with_mut(|slot| {
                // SAFETY: the slot is outside `head_seen..tail`, so the
                // consumer emptied it (the acquire load of `head` ordered
                // its read before this write) and reads it again only
                // after a later publish.
                unsafe { (*slot).write(value) };
            });
            p.tail = p.tail.wrapping_add(1);
            Ok(())
        })
    }

    /// Makes every pushed message visible to the consumer; false if there
    /// was nothing new to publish.
    ///
    /// # Safety
    /// The producer's contract (see [`push`](Self::push)).
    pub(crate) unsafe fn publish(&self) -> bool {
        self.prod.with_mut(|p| {
            // SAFETY: the producer's view (the contract).
            let p = unsafe { &mut *p };
            if p.published == p.tail {
                return false;
            }
            p.published = p.tail;
            // Release: the slot writes before it reach the consumer's
            // acquire load of `tail`.
            self.tail.store(p.tail, Release);
            true
        })
    }

    /// Whether messages were pushed but not yet published.
    #[cfg(all(test, not(loom)))]
    ///
    /// # Safety
    /// The producer's contract (see [`push`](Self::push)).
    pub(crate) unsafe fn unpublished(&self) -> bool {
        // SAFETY: the producer's view (the contract).
        self.prod
            .with_mut(|p| unsafe { (*p).published != (*p).tail })
    }

    /// Takes the oldest published message, if any, and frees its slot.
    ///
    /// # Safety
    /// Only the ring's consumer calls `pop`, one call at a time.
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        self.cons.with_mut(|c| {
            // SAFETY: the consumer's view, reached only by the consumer
            // (the contract), one call at a time.
            let c = unsafe { &mut *c };
            if c.head == c.tail_seen {
                c.tail_seen = self.tail.load(Acquire);
                if c.head == c.tail_seen {
                    return None;
                }
            }
            let value = self.slots[c.head & self.mask].with_mut(|slot| {
                // SAFETY: the slot is in `head..tail_seen`: the producer
                // filled it before the release store of `tail` this side
                // read with acquire, and touches it again only after the
                // store of `head` below.
                unsafe { (*slot).assume_init_read() }
            });
            c.head = c.head.wrapping_add(1);
            // Release: the read above happens before the producer reuses
            // the slot (its acquire load of `head`).
            self.head.store(c.head, Release);
            Some(value)
        })
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both views and every slot are ours (`&mut self`). Messages pushed
        // and never popped, published or not, are dropped here.
        // SAFETY: exclusive access; the views are plain data.
        let (head, tail) = self
            .cons
            .with_mut(|c| self.prod.with_mut(|p| unsafe { ((*c).head, (*p).tail) }));
        let mut i = head;
        while i != tail {
            self.slots[i & self.mask].with_mut(|slot| {
                // SAFETY: slots in `head..tail` hold a message nobody took.
                unsafe { (*slot).assume_init_drop() }
            });
            i = i.wrapping_add(1);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Ring;
    use std::rc::Rc;

    #[test]
    fn fills_to_capacity_refuses_then_frees_a_slot_per_pop() {
        let r = Ring::new(4);
        // SAFETY: this thread is the only producer and the only consumer,
        // for every call in the block.
        unsafe {
            for i in 0..4 {
                r.push(i).unwrap();
            }
            assert_eq!(r.push(4), Err(4), "full, published or not");
            assert_eq!(r.pop(), None, "nothing published yet");
            assert!(r.unpublished());
            assert!(r.publish());
            assert!(!r.publish(), "nothing new");
            assert_eq!(r.pop(), Some(0));
            r.push(4).unwrap();
            r.publish();
            let rest: Vec<_> = std::iter::from_fn(|| r.pop()).collect();
            assert_eq!(rest, [1, 2, 3, 4]);
        }
    }

    #[test]
    fn dropping_the_ring_drops_what_is_left_published_or_not() {
        let token = Rc::new(());
        {
            let r = Ring::new(8);
            // SAFETY: one thread plays both sides.
            unsafe {
                for _ in 0..3 {
                    r.push(token.clone()).unwrap();
                }
                r.publish();
                drop(r.pop());
                r.push(token.clone()).unwrap();
            }
            assert_eq!(Rc::strong_count(&token), 4);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn the_counters_wrap_around_many_laps() {
        let r = Ring::new(2);
        // SAFETY: one thread plays both sides.
        unsafe {
            for i in 0..1000u32 {
                r.push(i).unwrap();
                r.publish();
                assert_eq!(r.pop(), Some(i));
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::Ring;
    use crate::loom::sync::Arc;

    /// A producer pushes three messages through a two-slot ring, spinning
    /// (with a yield) while it is full; the consumer takes them in order.
    /// loom checks every interleaving for a data race on a slot.
    #[test]
    fn loom_ring_delivers_in_order_through_a_full_ring() {
        loom::model(|| {
            let ring = Arc::new(Ring::new(2));
            let p = {
                let ring = ring.clone();
                loom::thread::spawn(move || {
                    for i in 0..3u32 {
                        let mut v = i;
                        loop {
                            // SAFETY: this thread is the only producer.
                            match unsafe { ring.push(v) } {
                                Ok(()) => break,
                                Err(back) => {
                                    v = back;
                                    // SAFETY: as above.
                                    unsafe { ring.publish() };
                                    loom::thread::yield_now();
                                }
                            }
                        }
                    }
                    // SAFETY: as above.
                    unsafe { ring.publish() };
                })
            };
            let mut got = Vec::new();
            while got.len() < 3 {
                // SAFETY: this thread is the only consumer.
                match unsafe { ring.pop() } {
                    Some(v) => got.push(v),
                    None => loom::thread::yield_now(),
                }
            }
            p.join().unwrap();
            assert_eq!(got, [0, 1, 2]);
        });
    }
}
