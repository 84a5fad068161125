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
        pub struct RwLockReadGuard<'a, T> {
            lock: &'a RwLock<T>,
            _marker: std::marker::PhantomData<*mut T>,
        }

        /// Exclusive access until dropped.
        #[must_use = "dropping the guard releases the write lock at once"]
        pub struct RwLockWriteGuard<'a, T> {
            lock: &'a RwLock<T>,
            _marker: std::marker::PhantomData<*mut T>,
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
                    lock: self,
                    _marker: std::marker::PhantomData,
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
                        lock: self,
                        _marker: std::marker::PhantomData,
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

        impl<T> std::ops::Deref for RwLockReadGuard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: a read guard holds one permit, so no writer (who
                // needs all of them) exists while it lives; readers only
                // share `&T`.
                unsafe { &*self.lock.value.get() }
            }
        }

        impl<T> Drop for RwLockReadGuard<'_, T> {
            fn drop(&mut self) {
                self.lock.sem.release(1);
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

        impl<T: std::fmt::Debug> std::fmt::Debug for RwLockReadGuard<'_, T> {
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
unsafe impl<T: Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: sharing a read guard shares `&T`: `T: Sync`.
unsafe impl<T: Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: a write guard on another thread mutates `T` there (`T: Send`);
// the lock it borrows must be `Sync` (`T: Send + Sync`).
unsafe impl<T: Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: sharing a write guard shares `&T`: `T: Sync`.
unsafe impl<T: Send + Sync> Sync for RwLockWriteGuard<'_, T> {}
