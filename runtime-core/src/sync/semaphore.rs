//! `Semaphore`: a fair (FIFO) counting semaphore with borrowed and owned
//! permits, for bounding concurrency (connections, in-flight requests).
//! The logic is in `sem_core.rs`; this file stamps the public surface of
//! both flavours (the cross-worker one here, the local one in `local.rs`).
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! rt.block_on(async {
//!     use std::sync::Arc;
//!     let sem = Arc::new(sprint_core::sync::Semaphore::new(2));
//!     let a = sem.clone().acquire_owned().await.unwrap();
//!     let _b = sem.acquire().await.unwrap();
//!     assert!(sem.try_acquire().is_err());
//!     drop(a);
//!     assert_eq!(sem.available_permits(), 1);
//! });
//! ```

macro_rules! semaphore_surface {
    ($cell:ty, $rc:ident, $marker:ty) => {
        /// A fair counting semaphore: permits go to waiters oldest first.
        pub struct Semaphore {
            core: $crate::sync::sem_core::SemCore<$cell>,
            _marker: std::marker::PhantomData<$marker>,
        }

        /// Permits borrowed from a [`Semaphore`]; dropping returns them.
        #[must_use = "dropping the permit returns it at once"]
        pub struct SemaphorePermit<'a> {
            sem: &'a Semaphore,
            permits: usize,
        }

        /// Permits held through an owning pointer to the semaphore, to move
        /// into a task; dropping returns them.
        #[must_use = "dropping the permit returns it at once"]
        pub struct OwnedSemaphorePermit {
            sem: $rc<Semaphore>,
            permits: usize,
        }

        impl Semaphore {
            /// The most permits a semaphore holds.
            pub const MAX_PERMITS: usize = $crate::sync::sem_core::MAX_PERMITS;

            /// A semaphore with `permits` permits.
            ///
            /// # Panics
            /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
            pub fn new(permits: usize) -> Semaphore {
                Semaphore {
                    core: $crate::sync::sem_core::SemCore::new(permits),
                    _marker: std::marker::PhantomData,
                }
            }

            /// Permits free now.
            pub fn available_permits(&self) -> usize {
                self.core.available()
            }

            /// Adds `n` permits (saturating at `MAX_PERMITS`), waking
            /// waiters.
            pub fn add_permits(&self, n: usize) {
                self.core.release(n)
            }

            /// Closes the semaphore: waiting and later acquires fail;
            /// permits already held stay valid.
            pub fn close(&self) {
                self.core.close()
            }

            /// True once closed.
            pub fn is_closed(&self) -> bool {
                self.core.is_closed()
            }

            /// Waits for one permit. Cancel-safe: dropping the future
            /// gives back anything it had been handed and keeps no place.
            pub async fn acquire(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
                self.acquire_many(1).await
            }

            /// Waits for `n` permits at once (FIFO with the others).
            pub async fn acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, AcquireError> {
                self.core.acquire(n as usize).await?;
                Ok(SemaphorePermit {
                    sem: self,
                    permits: n as usize,
                })
            }

            /// One permit now, or why not.
            pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
                self.try_acquire_many(1)
            }

            /// `n` permits now, or why not.
            pub fn try_acquire_many(&self, n: u32) -> Result<SemaphorePermit<'_>, TryAcquireError> {
                self.core.try_acquire(n as usize)?;
                Ok(SemaphorePermit {
                    sem: self,
                    permits: n as usize,
                })
            }

            /// Waits for one permit that owns a pointer to the semaphore.
            pub async fn acquire_owned(
                self: $rc<Self>,
            ) -> Result<OwnedSemaphorePermit, AcquireError> {
                self.acquire_many_owned(1).await
            }

            /// Waits for `n` owned permits.
            pub async fn acquire_many_owned(
                self: $rc<Self>,
                n: u32,
            ) -> Result<OwnedSemaphorePermit, AcquireError> {
                self.core.acquire(n as usize).await?;
                Ok(OwnedSemaphorePermit {
                    sem: self,
                    permits: n as usize,
                })
            }

            /// One owned permit now, or why not.
            pub fn try_acquire_owned(
                self: $rc<Self>,
            ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
                self.try_acquire_many_owned(1)
            }

            /// `n` owned permits now, or why not.
            pub fn try_acquire_many_owned(
                self: $rc<Self>,
                n: u32,
            ) -> Result<OwnedSemaphorePermit, TryAcquireError> {
                self.core.try_acquire(n as usize)?;
                Ok(OwnedSemaphorePermit {
                    sem: self,
                    permits: n as usize,
                })
            }
        }

        impl SemaphorePermit<'_> {
            /// Keeps the permits out of the semaphore for good.
            pub fn forget(mut self) {
                self.permits = 0;
            }

            /// Permits held.
            pub fn num_permits(&self) -> usize {
                self.permits
            }

            /// Takes `other`'s permits into this one (they return
            /// together).
            ///
            /// # Panics
            /// If `other` came from another semaphore, as tokio's: their
            /// permits cannot return to this one.
            pub fn merge(&mut self, mut other: Self) {
                assert!(
                    std::ptr::eq(self.sem, other.sem),
                    "SemaphorePermit::merge: the permits come from different semaphores; \
                     keep one permit per semaphore"
                );
                self.permits += std::mem::take(&mut other.permits);
            }

            /// Splits `n` of the held permits off into a permit of their
            /// own; `None` (and nothing changes) when fewer than `n` are
            /// held.
            pub fn split(&mut self, n: usize) -> Option<Self> {
                self.permits = self.permits.checked_sub(n)?;
                Some(SemaphorePermit {
                    sem: self.sem,
                    permits: n,
                })
            }
        }

        impl Drop for SemaphorePermit<'_> {
            fn drop(&mut self) {
                self.sem.core.release(self.permits);
            }
        }

        impl OwnedSemaphorePermit {
            /// Keeps the permits out of the semaphore for good.
            pub fn forget(mut self) {
                self.permits = 0;
            }

            /// Permits held.
            pub fn num_permits(&self) -> usize {
                self.permits
            }

            /// The semaphore they came from.
            pub fn semaphore(&self) -> &$rc<Semaphore> {
                &self.sem
            }

            /// Takes `other`'s permits into this one (they return
            /// together).
            ///
            /// # Panics
            /// If `other` came from another semaphore, as tokio's: their
            /// permits cannot return to this one.
            pub fn merge(&mut self, mut other: Self) {
                assert!(
                    $rc::ptr_eq(&self.sem, &other.sem),
                    "OwnedSemaphorePermit::merge: the permits come from different semaphores; \
                     keep one permit per semaphore"
                );
                self.permits += std::mem::take(&mut other.permits);
            }

            /// Splits `n` of the held permits off into a permit of their
            /// own; `None` (and nothing changes) when fewer than `n` are
            /// held.
            pub fn split(&mut self, n: usize) -> Option<Self> {
                self.permits = self.permits.checked_sub(n)?;
                Some(OwnedSemaphorePermit {
                    sem: self.sem.clone(),
                    permits: n,
                })
            }
        }

        impl Drop for OwnedSemaphorePermit {
            fn drop(&mut self) {
                self.sem.core.release(self.permits);
            }
        }

        impl std::fmt::Debug for Semaphore {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Semaphore")
                    .field("available_permits", &self.available_permits())
                    .finish_non_exhaustive()
            }
        }

        impl std::fmt::Debug for SemaphorePermit<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("SemaphorePermit")
                    .field("permits", &self.permits)
                    .finish_non_exhaustive()
            }
        }

        impl std::fmt::Debug for OwnedSemaphorePermit {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("OwnedSemaphorePermit")
                    .field("permits", &self.permits)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use semaphore_surface;

pub use super::sem_core::{AcquireError, TryAcquireError};
use std::sync::Arc;

semaphore_surface!(crate::loom::sync::Mutex<super::sem_core::SemState>, Arc, ());
