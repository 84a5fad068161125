//! `RwLock`: many readers or one writer, guards that may be held across
//! `.await`. It is a semaphore of `MAX_READS` permits (`sem_core.rs`): a
//! reader takes one, a writer takes them all. The semaphore's FIFO makes
//! it fair and write-preferring, as tokio's: once a writer waits, later
//! readers queue behind it, so readers cannot starve writers.
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     let lock = sprint_core::sync::RwLock::new(5);
//!     {
//!         let (a, b) = (lock.read().await, lock.read().await);
//!         assert_eq!(*a + *b, 10);
//!     }
//!     *lock.write().await += 1;
//!     assert_eq!(*lock.read().await, 6);
//! });
//! ```

/// Concurrent readers a lock admits.
pub(crate) const MAX_READS: u32 = u32::MAX >> 3;

/// The same error as the mutex's, as in tokio.
pub(crate) use super::mutex::TryLockError;

macro_rules! rwlock_surface {
    ($cell:ty, $marker:ty) => {
        /// Many readers or one writer; see the module notes.
        pub struct RwLock<T> {
            sem: $crate::sync::sem_core::SemCore<$cell>,
            value: std::cell::UnsafeCell<T>,
            _marker: std::marker::PhantomData<$marker>,
        }

        /// Shared access until dropped.
        #[must_use = "dropping the guard releases the read lock at once"]
        pub struct RwLockReadGuard<'a, T: ?Sized> {
            sem: &'a $crate::sync::sem_core::SemCore<$cell>,
            data: *const T,
        }

        /// Exclusive access until dropped.
        #[must_use = "dropping the guard releases the write lock at once"]
        pub struct RwLockWriteGuard<'a, T> {
            lock: &'a RwLock<T>,
            _marker: std::marker::PhantomData<*mut T>,
        }

        /// A [`RwLockWriteGuard`] narrowed by [`RwLockWriteGuard::map`]
        /// to a part of the value; holds the write lock until dropped.
        #[must_use = "dropping the guard releases the write lock at once"]
        pub struct RwLockMappedWriteGuard<'a, U: ?Sized> {
            sem: &'a $crate::sync::sem_core::SemCore<$cell>,
            data: *mut U,
        }

        impl<T> RwLock<T> {
            /// An unlocked lock holding `value`.
            pub fn new(value: T) -> RwLock<T> {
                RwLock {
                    sem: $crate::sync::sem_core::SemCore::new(
                        $crate::sync::rwlock::MAX_READS as usize,
                    ),
                    value: std::cell::UnsafeCell::new(value),
                    _marker: std::marker::PhantomData,
                }
            }

            /// Waits for shared access (behind any writer that waits).
            pub async fn read(&self) -> RwLockReadGuard<'_, T> {
                // The lock is never closed, so the acquire cannot fail.
                let _ = self.sem.acquire(1).await;
                RwLockReadGuard {
                    sem: &self.sem,
                    data: self.value.get(),
                }
            }

            /// Waits for exclusive access.
            pub async fn write(&self) -> RwLockWriteGuard<'_, T> {
                let _ = self
                    .sem
                    .acquire($crate::sync::rwlock::MAX_READS as usize)
                    .await;
                RwLockWriteGuard {
                    lock: self,
                    _marker: std::marker::PhantomData,
                }
            }

            /// Shared access now, or why not.
            pub fn try_read(
                &self,
            ) -> Result<RwLockReadGuard<'_, T>, $crate::sync::rwlock::TryLockError> {
                match self.sem.try_acquire(1) {
                    Ok(()) => Ok(RwLockReadGuard {
                        sem: &self.sem,
                        data: self.value.get(),
                    }),
                    Err(_) => Err($crate::sync::rwlock::TryLockError(())),
                }
            }

            /// Exclusive access now, or why not.
            pub fn try_write(
                &self,
            ) -> Result<RwLockWriteGuard<'_, T>, $crate::sync::rwlock::TryLockError> {
                match self
                    .sem
                    .try_acquire($crate::sync::rwlock::MAX_READS as usize)
                {
                    Ok(()) => Ok(RwLockWriteGuard {
                        lock: self,
                        _marker: std::marker::PhantomData,
                    }),
                    Err(_) => Err($crate::sync::rwlock::TryLockError(())),
                }
            }

            /// The value, through exclusive access to the lock.
            pub fn get_mut(&mut self) -> &mut T {
                self.value.get_mut()
            }

            /// The value, consuming the lock.
            pub fn into_inner(self) -> T {
                self.value.into_inner()
            }
        }

        impl<T: Default> Default for RwLock<T> {
            fn default() -> Self {
                RwLock::new(T::default())
            }
        }

        impl<T: ?Sized> std::ops::Deref for RwLockReadGuard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: `data` points into the value of the lock that
                // `sem` guards (borrowed for `'a`), and a read guard holds
                // one of its permits, so no writer (who needs all of
                // them) exists while it lives; readers only share `&T`.
                unsafe { &*self.data }
            }
        }

        impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
            fn drop(&mut self) {
                self.sem.release(1);
            }
        }

        impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
            /// Narrows the guard to a part of the value; the read lock
            /// stays held until the new guard drops. An associated
            /// function, as tokio's: `RwLockReadGuard::map(g, f)`.
            pub fn map<U: ?Sized>(this: Self, f: impl FnOnce(&T) -> &U) -> RwLockReadGuard<'a, U> {
                let data: *const U = f(&*this);
                let sem = this.sem;
                // The permit moves to the new guard, which releases it.
                std::mem::forget(this);
                RwLockReadGuard { sem, data }
            }

            /// As [`RwLockReadGuard::map`] when `f` finds the part;
            /// otherwise the guard comes back unchanged.
            pub fn try_map<U: ?Sized>(
                this: Self,
                f: impl FnOnce(&T) -> Option<&U>,
            ) -> Result<RwLockReadGuard<'a, U>, Self> {
                let Some(data) = f(&*this).map(|u| u as *const U) else {
                    return Err(this);
                };
                let sem = this.sem;
                std::mem::forget(this);
                Ok(RwLockReadGuard { sem, data })
            }
        }

        impl<'a, T> RwLockWriteGuard<'a, T> {
            /// Narrows the guard to a part of the value; the write lock
            /// stays held until the new guard drops.
            pub fn map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> &mut U,
            ) -> RwLockMappedWriteGuard<'a, U> {
                let data: *mut U = f(&mut *this);
                let lock: &'a RwLock<T> = this.lock;
                std::mem::forget(this);
                RwLockMappedWriteGuard {
                    sem: &lock.sem,
                    data,
                }
            }

            /// As [`RwLockWriteGuard::map`] when `f` finds the part;
            /// otherwise the guard comes back unchanged.
            pub fn try_map<U: ?Sized>(
                mut this: Self,
                f: impl FnOnce(&mut T) -> Option<&mut U>,
            ) -> Result<RwLockMappedWriteGuard<'a, U>, Self> {
                let Some(data) = f(&mut *this).map(|u| u as *mut U) else {
                    return Err(this);
                };
                let lock: &'a RwLock<T> = this.lock;
                std::mem::forget(this);
                Ok(RwLockMappedWriteGuard {
                    sem: &lock.sem,
                    data,
                })
            }
        }

        impl<U: ?Sized> std::ops::Deref for RwLockMappedWriteGuard<'_, U> {
            type Target = U;
            fn deref(&self) -> &U {
                // SAFETY: `data` points into the value of a lock whose
                // every permit this guard holds (taken over from a write
                // guard that was forgotten): no other guard exists.
                unsafe { &*self.data }
            }
        }

        impl<U: ?Sized> std::ops::DerefMut for RwLockMappedWriteGuard<'_, U> {
            fn deref_mut(&mut self) -> &mut U {
                // SAFETY: as in `deref`; `&mut self` makes this the only
                // reference the guard hands out.
                unsafe { &mut *self.data }
            }
        }

        impl<U: ?Sized> Drop for RwLockMappedWriteGuard<'_, U> {
            fn drop(&mut self) {
                self.sem.release($crate::sync::rwlock::MAX_READS as usize);
            }
        }

        impl<U: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLockMappedWriteGuard<'_, U> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T> std::ops::Deref for RwLockWriteGuard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: a write guard holds every permit: no other guard
                // exists while it lives.
                unsafe { &*self.lock.value.get() }
            }
        }

        impl<T> std::ops::DerefMut for RwLockWriteGuard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: as in `deref`; `&mut self` makes this the only
                // reference the guard hands out.
                unsafe { &mut *self.lock.value.get() }
            }
        }

        impl<T> Drop for RwLockWriteGuard<'_, T> {
            fn drop(&mut self) {
                self.lock
                    .sem
                    .release($crate::sync::rwlock::MAX_READS as usize);
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for RwLock<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct("RwLock");
                match self.try_read() {
                    Ok(g) => d.field("value", &&*g),
                    Err(_) => d.field("value", &format_args!("<locked>")),
                };
                d.finish()
            }
        }

        impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for RwLockReadGuard<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for RwLockWriteGuard<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }
    };
}
pub(crate) use rwlock_surface;

rwlock_surface!(crate::loom::sync::Mutex<super::sem_core::SemState>, ());

// SAFETY: readers on several threads share `&T` (needs `T: Sync`); a writer
// on any thread gets `&mut T` (needs `T: Send`); the semaphore keeps them
// apart.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}
// SAFETY: a read guard on another thread reads `&T` there: `T: Sync`.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: sharing a read guard shares `&T`: `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard on another thread mutates `T` there (`T: Send`);
// the lock it borrows must be `Sync` (`T: Send + Sync`).
unsafe impl<T: Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: sharing a write guard shares `&T`: `T: Sync`.
unsafe impl<T: Send + Sync> Sync for RwLockWriteGuard<'_, T> {}
// SAFETY: as for `RwLockWriteGuard`: the mapped guard holds the write
// lock and mutates `U`, a part of the value, on its thread.
unsafe impl<U: ?Sized + Send + Sync> Send for RwLockMappedWriteGuard<'_, U> {}
// SAFETY: sharing it shares `&U`: `U: Sync`.
unsafe impl<U: ?Sized + Send + Sync> Sync for RwLockMappedWriteGuard<'_, U> {}
