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

        /// A [`MutexGuard`] narrowed by [`MutexGuard::map`] to a part of
        /// the value; holds the lock until dropped.
        #[must_use = "dropping the guard unlocks at once"]
        pub struct MappedMutexGuard<'a, U: ?Sized> {
            sem: &'a $crate::sync::sem_core::SemCore<$cell>,
            data: *mut U,
        }

        /// An [`OwnedMutexGuard`] narrowed by [`OwnedMutexGuard::map`] to
        /// a part of the value; holds the lock until dropped.
        #[must_use = "dropping the guard unlocks at once"]
        pub struct OwnedMappedMutexGuard<T, U: ?Sized = T> {
            lock: $rc<Mutex<T>>,
            data: *mut U,
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

        impl<'a, T> MutexGuard<'a, T> {
            /// Narrows the guard to a part of the value (a field, an
            /// element); the lock stays held until the new guard drops.
            /// An associated function, as tokio's: `MutexGuard::map(g, f)`.
            pub fn map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> &mut U,
            ) -> MappedMutexGuard<'a, U> {
                let data: *mut U = f(&mut *this);
                let lock: &'a Mutex<T> = this.lock;
                let sem = &lock.sem;
                // The permit moves to the mapped guard, which releases it.
                std::mem::forget(this);
                MappedMutexGuard { sem, data }
            }

            /// As [`MutexGuard::map`] when `f` finds the part; otherwise
            /// the guard comes back unchanged.
            pub fn try_map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> Option<&mut U>,
            ) -> Result<MappedMutexGuard<'a, U>, Self> {
                let Some(data) = f(&mut *this).map(|u| u as *mut U) else {
                    return Err(this);
                };
                let lock: &'a Mutex<T> = this.lock;
                let sem = &lock.sem;
                std::mem::forget(this);
                Ok(MappedMutexGuard { sem, data })
            }

            /// The mutex this guard locks.
            pub fn mutex(this: &Self) -> &'a Mutex<T> {
                this.lock
            }
        }

        impl<'a, U: ?Sized> MappedMutexGuard<'a, U> {
            /// Narrows the guard further.
            pub fn map<V: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut U) -> &mut V,
            ) -> MappedMutexGuard<'a, V> {
                let data: *mut V = f(&mut *this);
                let sem = this.sem;
                std::mem::forget(this);
                MappedMutexGuard { sem, data }
            }

            /// As [`MappedMutexGuard::map`] when `f` finds the part;
            /// otherwise the guard comes back unchanged.
            pub fn try_map<V: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut U) -> Option<&mut V>,
            ) -> Result<MappedMutexGuard<'a, V>, Self> {
                let Some(data) = f(&mut *this).map(|v| v as *mut V) else {
                    return Err(this);
                };
                let sem = this.sem;
                std::mem::forget(this);
                Ok(MappedMutexGuard { sem, data })
            }
        }

        impl<U: ?Sized> std::ops::Deref for MappedMutexGuard<'_, U> {
            type Target = U;
            fn deref(&self) -> &U {
                // SAFETY: `data` points into the value of a mutex whose
                // only permit this guard holds (it came from a guard that
                // held it and was forgotten), so no other reference to
                // the value exists; the borrow `'a` keeps the mutex alive.
                unsafe { &*self.data }
            }
        }

        impl<U: ?Sized> std::ops::DerefMut for MappedMutexGuard<'_, U> {
            fn deref_mut(&mut self) -> &mut U {
                // SAFETY: as in `deref`; `&mut self` makes this the only
                // reference the guard hands out.
                unsafe { &mut *self.data }
            }
        }

        impl<U: ?Sized> Drop for MappedMutexGuard<'_, U> {
            fn drop(&mut self) {
                self.sem.release(1);
            }
        }

        impl<T> OwnedMutexGuard<T> {
            /// Narrows the guard to a part of the value; the lock stays
            /// held until the new guard drops.
            pub fn map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> &mut U,
            ) -> OwnedMappedMutexGuard<T, U> {
                let data: *mut U = f(&mut *this);
                // SAFETY: `this` is read once and then forgotten, so the
                // pointer (and the permit it stands for) moves to the
                // mapped guard without a second drop.
                let lock = unsafe { std::ptr::read(&this.lock) };
                std::mem::forget(this);
                OwnedMappedMutexGuard { lock, data }
            }

            /// As [`OwnedMutexGuard::map`] when `f` finds the part;
            /// otherwise the guard comes back unchanged.
            pub fn try_map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> Option<&mut U>,
            ) -> Result<OwnedMappedMutexGuard<T, U>, Self> {
                let Some(data) = f(&mut *this).map(|u| u as *mut U) else {
                    return Err(this);
                };
                // SAFETY: as in `map`.
                let lock = unsafe { std::ptr::read(&this.lock) };
                std::mem::forget(this);
                Ok(OwnedMappedMutexGuard { lock, data })
            }
        }

        impl<T, U: ?Sized> OwnedMappedMutexGuard<T, U> {
            /// The mutex this guard locks.
            pub fn mutex(&self) -> &$rc<Mutex<T>> {
                &self.lock
            }
        }

        impl<T, U: ?Sized> std::ops::Deref for OwnedMappedMutexGuard<T, U> {
            type Target = U;
            fn deref(&self) -> &U {
                // SAFETY: `data` points into the value of the mutex that
                // `lock` keeps alive, whose only permit this guard holds.
                unsafe { &*self.data }
            }
        }

        impl<T, U: ?Sized> std::ops::DerefMut for OwnedMappedMutexGuard<T, U> {
            fn deref_mut(&mut self) -> &mut U {
                // SAFETY: as in `deref`; `&mut self` makes this the only
                // reference the guard hands out.
                unsafe { &mut *self.data }
            }
        }

        impl<T, U: ?Sized> Drop for OwnedMappedMutexGuard<T, U> {
            fn drop(&mut self) {
                self.lock.sem.release(1);
            }
        }

        impl<U: ?Sized + std::fmt::Debug> std::fmt::Debug for MappedMutexGuard<'_, U> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T, U: ?Sized + std::fmt::Debug> std::fmt::Debug for OwnedMappedMutexGuard<T, U> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
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
// SAFETY: as for `MutexGuard`: the mapped guard holds the lock and gives
// its thread `&mut U`, a part of the value (`U: Send`).
unsafe impl<U: ?Sized + Send> Send for MappedMutexGuard<'_, U> {}
// SAFETY: sharing the mapped guard shares `&U`: `U: Sync`.
unsafe impl<U: ?Sized + Send + Sync> Sync for MappedMutexGuard<'_, U> {}
// SAFETY: as for `OwnedMutexGuard` (the `Arc<Mutex<T>>` moves with it,
// needing `T: Send`) and `MappedMutexGuard`.
unsafe impl<T: Send, U: ?Sized + Send> Send for OwnedMappedMutexGuard<T, U> {}
// SAFETY: as for `MappedMutexGuard`.
unsafe impl<T: Send + Sync, U: ?Sized + Send + Sync> Sync for OwnedMappedMutexGuard<T, U> {}
