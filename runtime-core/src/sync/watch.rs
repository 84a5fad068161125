//! `watch`: senders publish a value, any number of receivers see the
//! latest one and can wait for it to change. Configuration and shutdown
//! flags are the usual use; intermediate values may be skipped, only the
//! latest counts.
//!
//! The value sits behind a readers/writer lock with a version number; each
//! receiver remembers the version it saw last. A send bumps the version
//! and calls `Notify::notify_waiters`; `changed()` creates its `Notified`
//! *before* it compares versions, so a send between the comparison and the
//! wait still wakes it (the loom models check this).
//!
//! The code is stamped twice by one macro: here with `Arc`, a
//! readers/writer lock and the cross-worker `Notify`, and in [`local`]
//! (also `sync::local::watch`) with `Rc`, a `RefCell` and the local
//! `Notify`, for tasks of one worker.
//!
//! Do not hold a [`Ref`] across an `.await` or while sending on the same
//! channel: it holds the read lock, and the send would wait for it.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = sprint_core::sync::watch::channel("starting");
//!     sprint_core::spawn(async move { tx.send_replace("ready"); });
//!     rx.changed().await.unwrap();
//!     assert_eq!(*rx.borrow_and_update(), "ready");
//! });
//! ```

use std::fmt;

/// Every receiver is gone; the value comes back.
#[derive(PartialEq, Eq, Clone, thiserror::Error)]
#[error("every receiver was dropped")]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

/// Every sender is gone and no unseen value is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every sender was dropped")]
pub struct RecvError(());

/// Stamps the channel for one flavour: `$rc` shares it (`Arc` or `Rc`);
/// `SlotLock`, `SlotReadGuard` and `Notify` at the call site name the
/// lock around the value, its read guard and the wake-up.
macro_rules! watch_surface {
    ($rc:ident) => {
        struct Slot<T> {
            value: T,
            version: u64,
            /// Senders alive; the channel closes for receivers at 0.
            senders: usize,
            receivers: usize,
        }

        struct Shared<T> {
            slot: SlotLock<Slot<T>>,
            changed: Notify,
            rx_gone: Notify,
        }

        /// Publishes values; clone it for more publishers (as tokio's, since
        /// 1.37). Dropping the last one closes the channel.
        pub struct Sender<T> {
            shared: $rc<Shared<T>>,
        }

        /// Sees the latest value and waits for changes; clone it for more.
        pub struct Receiver<T> {
            shared: $rc<Shared<T>>,
            seen: u64,
        }

        /// A borrowed value; holds the channel's read lock while it lives.
        pub struct Ref<'a, T> {
            guard: SlotReadGuard<'a, Slot<T>>,
            has_changed: bool,
        }

        /// A channel holding `init`; the first receiver counts it as seen.
        pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
            let tx = Sender::new(init);
            let rx = tx.subscribe();
            (tx, rx)
        }

        impl<T> Sender<T> {
            /// A channel holding `init` with no receiver yet; make them with
            /// [`Sender::subscribe`]. Until then `send` is refused and
            /// `send_replace` stores the value.
            pub fn new(init: T) -> Sender<T> {
                Sender {
                    shared: $rc::new(Shared {
                        slot: SlotLock::new(Slot {
                            value: init,
                            version: 0,
                            senders: 1,
                            receivers: 0,
                        }),
                        changed: Notify::new(),
                        rx_gone: Notify::new(),
                    }),
                }
            }

            /// Publishes `value`; refused (and handed back) when every receiver
            /// is gone.
            pub fn send(&self, value: T) -> Result<(), SendError<T>> {
                let mut slot = self.shared.slot.write();
                if slot.receivers == 0 {
                    return Err(SendError(value));
                }
                slot.value = value;
                slot.version += 1;
                drop(slot);
                self.shared.changed.notify_waiters();
                Ok(())
            }

            /// Publishes `value` even with no receiver; returns the old value.
            pub fn send_replace(&self, value: T) -> T {
                let mut value = value;
                self.send_modify(|v| std::mem::swap(v, &mut value));
                value
            }

            /// Changes the value in place and notifies the receivers.
            pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
                self.send_if_modified(|v| {
                    modify(v);
                    true
                });
            }

            /// Changes the value in place; notifies only when `modify` returns
            /// true (it changed something). Returns what `modify` returned.
            pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
                let mut slot = self.shared.slot.write();
                let modified = modify(&mut slot.value);
                if modified {
                    slot.version += 1;
                }
                drop(slot);
                if modified {
                    self.shared.changed.notify_waiters();
                }
                modified
            }

            /// The current value.
            pub fn borrow(&self) -> Ref<'_, T> {
                Ref {
                    guard: self.shared.slot.read(),
                    has_changed: false,
                }
            }

            /// A new receiver that counts the current value as seen.
            pub fn subscribe(&self) -> Receiver<T> {
                let mut slot = self.shared.slot.write();
                slot.receivers += 1;
                Receiver {
                    shared: self.shared.clone(),
                    seen: slot.version,
                }
            }

            /// Receivers alive now.
            pub fn receiver_count(&self) -> usize {
                self.shared.slot.read().receivers
            }

            /// True when every receiver is gone.
            pub fn is_closed(&self) -> bool {
                self.receiver_count() == 0
            }

            /// Waits until every receiver is gone.
            pub async fn closed(&self) {
                loop {
                    let gone = self.shared.rx_gone.notified();
                    if self.is_closed() {
                        return;
                    }
                    gone.await;
                }
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.shared.slot.write().senders += 1;
                Sender {
                    shared: self.shared.clone(),
                }
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                let last = {
                    let mut slot = self.shared.slot.write();
                    slot.senders -= 1;
                    slot.senders == 0
                };
                if last {
                    self.shared.changed.notify_waiters();
                }
            }
        }

        impl<T> Receiver<T> {
            /// The current value, leaving it unseen if it was.
            pub fn borrow(&self) -> Ref<'_, T> {
                let guard = self.shared.slot.read();
                let has_changed = guard.version != self.seen;
                Ref { guard, has_changed }
            }

            /// The current value, marking it seen.
            pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
                let guard = self.shared.slot.read();
                let has_changed = guard.version != self.seen;
                self.seen = guard.version;
                Ref { guard, has_changed }
            }

            /// True when a value this receiver has not seen is there; `RecvError`
            /// when there is none and every sender is gone.
            pub fn has_changed(&self) -> Result<bool, RecvError> {
                let slot = self.shared.slot.read();
                if slot.version != self.seen {
                    Ok(true)
                } else if slot.senders > 0 {
                    Ok(false)
                } else {
                    Err(RecvError(()))
                }
            }

            /// Waits for a value this receiver has not seen and marks it seen;
            /// `RecvError` once every sender is gone and none is left. Cancel-safe.
            pub async fn changed(&mut self) -> Result<(), RecvError> {
                loop {
                    let notified = self.shared.changed.notified();
                    {
                        let slot = self.shared.slot.read();
                        if slot.version != self.seen {
                            self.seen = slot.version;
                            return Ok(());
                        }
                        if slot.senders == 0 {
                            return Err(RecvError(()));
                        }
                    }
                    notified.await;
                }
            }

            /// Counts the current value as not yet seen.
            pub fn mark_changed(&mut self) {
                self.seen = self.seen.wrapping_sub(1);
            }
        }

        impl<T> Clone for Receiver<T> {
            fn clone(&self) -> Self {
                self.shared.slot.write().receivers += 1;
                Receiver {
                    shared: self.shared.clone(),
                    seen: self.seen,
                }
            }
        }

        impl<T> Drop for Receiver<T> {
            fn drop(&mut self) {
                let last = {
                    let mut slot = self.shared.slot.write();
                    slot.receivers -= 1;
                    slot.receivers == 0
                };
                if last {
                    self.shared.rx_gone.notify_waiters();
                }
            }
        }

        impl<T> Ref<'_, T> {
            /// True when the borrowed value had not been seen by the receiver.
            pub fn has_changed(&self) -> bool {
                self.has_changed
            }
        }

        impl<T> std::ops::Deref for Ref<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.guard.value
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for Ref<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T> std::fmt::Debug for Sender<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("watch::Sender").finish_non_exhaustive()
            }
        }

        impl<T> std::fmt::Debug for Receiver<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("watch::Receiver")
                    .field("seen", &self.seen)
                    .finish_non_exhaustive()
            }
        }
    };
}

use super::notify::Notify;
use crate::loom::sync::{RwLock as SlotLock, RwLockReadGuard as SlotReadGuard};
use std::sync::Arc;

watch_surface!(Arc);

/// The `!Send` flavour (also `sync::local::watch`), for tasks of one
/// worker: the same channel with the value in a `RefCell`, `Rc` for `Arc`
/// and the local `Notify`, so no atomic instruction and no lock. Where
/// the cross-worker flavour would deadlock (a [`Ref`] kept alive while
/// the same channel sends), it panics, naming the `Ref`.
pub mod local {
    pub use super::{RecvError, SendError};
    use crate::sync::local::Notify;
    use crate::sync::state::{LocalLock as SlotLock, LocalRef as SlotReadGuard};
    use std::rc::Rc;

    watch_surface!(Rc);
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::channel;
    use loom::future::block_on;

    /// A send racing `changed()` is never missed, and the receiver then
    /// sees the new value.
    #[test]
    fn loom_watch_send_races_changed() {
        loom::model(|| {
            let (tx, mut rx) = channel(0);
            let t = loom::thread::spawn(move || {
                tx.send(1).unwrap();
            });
            block_on(rx.changed()).unwrap();
            assert_eq!(*rx.borrow_and_update(), 1);
            t.join().unwrap();
        });
    }

    /// Two clones of the sender dropped on two threads: the receiver
    /// learns the channel closed once, after the last.
    #[test]
    fn loom_watch_cloned_senders_close_after_the_last() {
        loom::model(|| {
            let (tx, mut rx) = channel(0);
            let tx2 = tx.clone();
            let t = loom::thread::spawn(move || drop(tx2));
            assert_eq!(rx.has_changed(), Ok(false));
            drop(tx);
            assert!(block_on(rx.changed()).is_err());
            t.join().unwrap();
            assert!(rx.has_changed().is_err());
        });
    }

    /// The sender's drop wakes a waiting receiver with `RecvError`
    /// (or it saw the value first).
    #[test]
    fn loom_watch_drop_of_sender_ends_changed() {
        loom::model(|| {
            let (tx, mut rx) = channel(0);
            let t = loom::thread::spawn(move || drop(tx));
            assert!(block_on(rx.changed()).is_err());
            t.join().unwrap();
        });
    }
}
