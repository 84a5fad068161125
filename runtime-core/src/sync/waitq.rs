//! A FIFO of waiting tasks with O(1) removal, free of locking: the
//! semaphore, `Notify` and `broadcast` keep one inside their state (a mutex
//! for the cross-worker flavour, a `RefCell` for the local one).
//!
//! A waiter is a slab entry linked into a doubly linked list. Waking a
//! waiter *unlinks* it but keeps its entry, so the future that owns the key
//! sees, on its next poll or on drop, that it was chosen (and what it was
//! given: the `S` payload). The future removes its entry when it completes
//! or is dropped; a dropped future that was still linked just leaves the
//! queue, and one that was already chosen can hand back what it received.
//! Keys are never reused while their owner holds them.

use slab::Slab;
use std::task::Waker;

#[derive(Debug)]
struct Node<S> {
    prev: Option<usize>,
    next: Option<usize>,
    linked: bool,
    waker: Option<Waker>,
    state: S,
}

/// The queue: `head` is the oldest waiter.
#[derive(Debug)]
pub(crate) struct WaitQueue<S> {
    nodes: Slab<Node<S>>,
    head: Option<usize>,
    tail: Option<usize>,
}

impl<S> Default for WaitQueue<S> {
    fn default() -> Self {
        WaitQueue {
            nodes: Slab::new(),
            head: None,
            tail: None,
        }
    }
}

impl<S> WaitQueue<S> {
    /// Queues a waiter at the back; returns its key.
    pub(crate) fn push_back(&mut self, waker: &Waker, state: S) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: None,
            linked: true,
            waker: Some(waker.clone()),
            state,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// True while the waiter is still queued (not yet chosen).
    pub(crate) fn is_linked(&self, key: usize) -> bool {
        self.nodes[key].linked
    }

    /// Refreshes a queued waiter's waker.
    pub(crate) fn set_waker(&mut self, key: usize, waker: &Waker) {
        let node = &mut self.nodes[key];
        match &node.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => node.waker = Some(waker.clone()),
        }
    }

    pub(crate) fn state_mut(&mut self, key: usize) -> &mut S {
        &mut self.nodes[key].state
    }

    /// The oldest queued waiter.
    pub(crate) fn front(&self) -> Option<usize> {
        self.head
    }

    /// True when nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Takes the waiter out of the queue (its entry stays for its owner)
    /// and returns its waker, to be woken after the lock is released.
    pub(crate) fn unlink(&mut self, key: usize) -> Option<Waker> {
        let node = &mut self.nodes[key];
        if !node.linked {
            return None;
        }
        node.linked = false;
        let (prev, next) = (node.prev.take(), node.next.take());
        let waker = node.waker.take();
        match prev {
            Some(p) => self.nodes[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.nodes[n].prev = prev,
            None => self.tail = prev,
        }
        waker
    }

    /// Removes the waiter's entry (unlinking it first if still queued);
    /// returns its payload.
    pub(crate) fn remove(&mut self, key: usize) -> S {
        drop(self.unlink(key));
        self.nodes.remove(key).state
    }

    /// Unlinks every queued waiter, collecting their wakers.
    pub(crate) fn unlink_all(&mut self, out: &mut super::bounded::WakeList) {
        while let Some(k) = self.head {
            if let Some(w) = self.unlink(k) {
                out.push(w);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::WaitQueue;
    use std::task::Waker;

    #[test]
    fn fifo_order_survives_removal_from_the_middle() {
        let mut q = WaitQueue::default();
        let w = Waker::noop();
        let a = q.push_back(w, 'a');
        let b = q.push_back(w, 'b');
        let c = q.push_back(w, 'c');
        assert_eq!(q.remove(b), 'b');
        assert_eq!(q.front(), Some(a));
        assert!(q.unlink(a).is_some());
        assert!(!q.is_linked(a));
        assert_eq!(q.front(), Some(c));
        assert!(q.unlink(a).is_none(), "a waiter is chosen once");
        assert!(q.unlink(c).is_some());
        assert!(q.is_empty());
        assert_eq!(q.remove(a), 'a');
        assert_eq!(q.remove(c), 'c');
        let d = q.push_back(w, 'd');
        assert_eq!(q.front(), Some(d));
    }
}
