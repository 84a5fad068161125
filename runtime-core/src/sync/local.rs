//! The `!Send` flavours, for tasks of one worker (`spawn_local`): the
//! same logic and the same fairness as the cross-worker items, with the
//! state in a `RefCell` instead of behind a mutex, and `Rc` where the
//! cross-worker flavour takes an `Arc`. No atomic instruction and no lock
//! on any path. The compiler keeps them on their worker (they are neither
//! `Send` nor `Sync`).
//!
//! ```
//! # let rt = sprint_core::Runtime::new(sprint_core::Config::for_level(sprint_core::Level::Basic), None).unwrap();
//! use sprint_core::sync::local::{Mutex, Semaphore};
//! use std::rc::Rc;
//!
//! // Local tasks run on one worker: start them there with spawn_local_on.
//! let task = rt.block_on(async {
//!     sprint_core::spawn_local_on(0, || async {
//!         let m = Rc::new(Mutex::new(Vec::new()));
//!         let sem = Rc::new(Semaphore::new(1));
//!         let (m2, sem2) = (m.clone(), sem.clone());
//!         let t = sprint_core::spawn_local(async move {
//!             let _p = sem2.acquire_owned().await.unwrap();
//!             m2.lock().await.push(1);
//!         });
//!         t.await.unwrap();
//!         assert_eq!(*m.lock().await, [1]);
//!         sem.available_permits()
//!     })
//!     .unwrap()
//!     .await
//!     .unwrap()
//! });
//! assert_eq!(task, 1);
//! ```
//!
//! Sharing one with another worker does not compile:
//!
//! ```compile_fail
//! fn crosses_workers<T: Send>(_: T) {}
//! crosses_workers(sprint_core::sync::local::Mutex::new(0));
//! ```
//!
//! ```compile_fail
//! fn crosses_workers<T: Send>(_: T) {}
//! crosses_workers(sprint_core::sync::local::Semaphore::new(1));
//! ```
//!
//! ```compile_fail
//! fn crosses_workers<T: Send>(_: T) {}
//! crosses_workers(sprint_core::sync::local::watch::channel(0).0);
//! ```
//!
//! ```compile_fail
//! fn crosses_workers<T: Send>(_: T) {}
//! crosses_workers(sprint_core::sync::local::broadcast::channel::<u8>(1).1);
//! ```

use super::notify::NotifyState;
use super::sem_core::SemState;
use std::cell::RefCell;
use std::rc::Rc;

pub use super::broadcast::local as broadcast;
pub use super::mpsc::local as mpsc;
pub use super::mutex::TryLockError;
pub use super::sem_core::{AcquireError, TryAcquireError};
pub use super::watch::local as watch;

super::semaphore::semaphore_surface!(RefCell<SemState>, Rc, *const ());
super::mutex::mutex_surface!(RefCell<SemState>, Rc, *const ());
super::rwlock::rwlock_surface!(RefCell<SemState>, *const ());
super::notify::notify_surface!(RefCell<NotifyState>, *const ());
