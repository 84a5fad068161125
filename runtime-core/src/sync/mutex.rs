//! `Mutex`: an async mutex whose guard may be held across `.await`, fair
//! (FIFO: the task that asked first locks first) and cancel-safe (a
//! dropped `lock()` future neither keeps its place nor the lock). It is a
//! one-permit semaphore (`sem_core.rs`) beside an `UnsafeCell`; this file
//! stamps both flavours' surface (the local one is used in `local.rs`).
//!
//! Reach for it only when the guard must live across an await; a
//! `parking_lot::Mutex` is cheaper for short critical sections.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let m = std::sync::Arc::new(sprint_core::sync::Mutex::new(0));
//!     let m2 = m.clone();
//!     sprint_core::spawn(async move { *m2.lock().await += 1 }).await.unwrap();
//!     assert_eq!(*m.lock().await, 1);
//! });
//! ```

/// The lock is held now (by a guard that refuses this access, or by
/// tasks queued before this one). `Mutex` and `RwLock` share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the lock is held")]
pub struct TryLockError(pub(crate) ());

macro_rules! mutex_surface {
    ($cell:ty, $rc:ident, $marker:ty) => {
        /// An async mutex; see the module notes.
        pub struct Mutex<T> {
            sem: $crate::sync::sem_core::SemCore<$cell>,
            value: std::cell::UnsafeCell<T>,
            _marker: std::marker::PhantomData<$marker>,
        }

        /// Exclusive access to the value until dropped.
        #[must_use = "dropping the guard unlocks at once"]
        pub struct MutexGuard<'a, T> {
            lock: &'a Mutex<T>,
            _marker: std::marker::PhantomData<*mut T>,
        }

        /// Exclusive access held through an owning pointer, to move into a
        /// task.
        #[must_use = "dropping the guard unlocks at once"]
        pub struct OwnedMutexGuard<T> {
            lock: $rc<Mutex<T>>,
            _marker: std::marker::PhantomData<*mut T>,
        }

        impl<T> Mutex<T> {
            /// An unlocked mutex holding `value`.
            pub fn new(value: T) -> Mutex<T> {
                Mutex {
                    sem: $crate::sync::sem_core::SemCore::new(1),
                    value: std::cell::UnsafeCell::new(value),
                    _marker: std::marker::PhantomData,
                }
            }

            /// Waits for the lock (FIFO with the other waiters).
            pub async fn lock(&self) -> MutexGuard<'_, T> {
                // A mutex is never closed, so the acquire cannot fail.
                let _ = self.sem.acquire(1).await;
                MutexGuard {
                    lock: self,
                    _marker: std::marker::PhantomData,
                }
            }

            /// The lock now, or `TryLockError` if it is held (or others
            /// wait for it).
            pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, TryLockError> {
                match self.sem.try_acquire(1) {
                    Ok(()) => Ok(MutexGuard {
                        lock: self,
                        _marker: std::marker::PhantomData,
                    }),
                    Err(_) => Err(TryLockError(())),
                }
            }

            /// Waits for the lock, holding it through `self`.
            pub async fn lock_owned(self: $rc<Self>) -> OwnedMutexGuard<T> {
                let _ = self.sem.acquire(1).await;
                OwnedMutexGuard {
                    lock: self,
                    _marker: std::marker::PhantomData,
                }
            }

            /// The owned lock now, or `TryLockError`.
            pub fn try_lock_owned(self: $rc<Self>) -> Result<OwnedMutexGuard<T>, TryLockError> {
                match self.sem.try_acquire(1) {
                    Ok(()) => Ok(OwnedMutexGuard {
                        lock: self,
                        _marker: std::marker::PhantomData,
                    }),
                    Err(_) => Err(TryLockError(())),
                }
            }

            /// The value, through exclusive access to the mutex.
            pub fn get_mut(&mut self) -> &mut T {
                self.value.get_mut()
            }

            /// The value, consuming the mutex.
            pub fn into_inner(self) -> T {
                self.value.into_inner()
            }
        }

        impl<T: Default> Default for Mutex<T> {
            fn default() -> Self {
                Mutex::new(T::default())
            }
        }

        impl<T> std::ops::Deref for MutexGuard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: the guard holds the mutex's only permit, so no
                // other reference to the value exists while it lives.
                unsafe { &*self.lock.value.get() }
            }
        }

        impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: as in `deref`; `&mut self` makes this the only
                // reference handed out by the guard.
                unsafe { &mut *self.lock.value.get() }
            }
        }

        impl<T> Drop for MutexGuard<'_, T> {
            fn drop(&mut self) {
                self.lock.sem.release(1);
            }
        }

        impl<T> OwnedMutexGuard<T> {
            /// The mutex this guard locks.
            pub fn mutex(&self) -> &$rc<Mutex<T>> {
                &self.lock
            }
        }

        impl<T> std::ops::Deref for OwnedMutexGuard<T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: the guard holds the mutex's only permit.
                unsafe { &*self.lock.value.get() }
            }
        }

        impl<T> std::ops::DerefMut for OwnedMutexGuard<T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: the guard holds the mutex's only permit, and
                // `&mut self` makes this the only reference it hands out.
                unsafe { &mut *self.lock.value.get() }
            }
        }

        impl<T> Drop for OwnedMutexGuard<T> {
            fn drop(&mut self) {
                self.lock.sem.release(1);
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for Mutex<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct("Mutex");
                match self.try_lock() {
                    Ok(g) => d.field("value", &&*g),
                    Err(_) => d.field("value", &format_args!("<locked>")),
                };
                d.finish()
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for OwnedMutexGuard<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }
    };
}
pub(crate) use mutex_surface;

use std::sync::Arc;

mutex_surface!(crate::loom::sync::Mutex<super::sem_core::SemState>, Arc, ());

// SAFETY: the value is reached only through a guard, and one guard exists
// at a time (the semaphore has one permit), so sharing the mutex hands the
// value from thread to thread, never to two at once: `T: Send` suffices.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: a guard on another thread gives that thread `&mut T`: needs
// `T: Send`; the mutex itself is `Sync` then.
unsafe impl<T: Send> Send for MutexGuard<'_, T> {}
// SAFETY: sharing `&MutexGuard` shares `&T`: needs `T: Sync`.
unsafe impl<T: Send + Sync> Sync for MutexGuard<'_, T> {}
// SAFETY: as for `MutexGuard`; the `Arc` keeps the mutex alive.
unsafe impl<T: Send> Send for OwnedMutexGuard<T> {}
// SAFETY: as for `MutexGuard`.
unsafe impl<T: Send + Sync> Sync for OwnedMutexGuard<T> {}
