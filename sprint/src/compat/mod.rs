//! Running the tokio ecosystem's crates on Sprint: hyper 1.x (feature
//! `hyper`) and anything written against tokio's I/O traits, such as
//! tokio-util's codecs and tokio-rustls (feature `tokio-io`).
//!
//! Sprint's [`TcpStream`](crate::net::TcpStream) and
//! [`UnixStream`](crate::net::UnixStream) implement `hyper::rt::Read` and
//! `Write`, and tokio's `AsyncRead` and `AsyncWrite` (so do the halves of
//! `split` and, for TCP, of `into_split`), reading straight into the
//! uninitialised buffers those traits lend: no wrapper type, no zero-fill,
//! no copy beyond the driver's own, and no tokio runtime. What hyper needs
//! besides I/O is here: a [`Timer`] on Sprint's timers, an [`Executor`]
//! that spawns on the current worker, and [`GracefulShutdown`] with
//! [`until`] to stop accepting, drain the open connections within a
//! deadline, then drop what is left.
//!
//! A hyper HTTP/1.1 server on Sprint:
//!
//! ```no_run
//! # #[cfg(feature = "hyper")]
//! # fn main() -> std::io::Result<()> {
//! use sprint::compat::{GracefulShutdown, Timer};
//! use std::time::Duration;
//!
//! let rt = sprint::Builder::new().level(sprint::Level::Standard).build().unwrap();
//! rt.block_on(async {
//!     sprint::spawn_local_on(0, || async {
//!         let listener = sprint::net::TcpListener::bind("127.0.0.1:8080")?;
//!         let graceful = GracefulShutdown::new();
//!         let mut stop = std::pin::pin!(sprint::time::sleep(Duration::from_secs(60)));
//!         while let Some(accepted) = sprint::compat::until(stop.as_mut(), listener.accept()).await {
//!             let (stream, _) = accepted?;
//!             let svc = hyper::service::service_fn(|_req| async {
//!                 Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hi")))
//!             });
//!             let conn = hyper::server::conn::http1::Builder::new()
//!                 .timer(Timer)
//!                 .serve_connection(stream, svc);
//!             drop(sprint::spawn_local(graceful.watch(conn)));
//!         }
//!         drop(listener);
//!         let _ = graceful.shutdown(Duration::from_secs(10)).await;
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .unwrap()
//!     .await
//!     .unwrap()
//! })
//! # }
//! # #[cfg(not(feature = "hyper"))]
//! # fn main() {}
//! ```

#[cfg(feature = "hyper")]
mod graceful;
#[cfg(feature = "hyper")]
mod hyper_rt;

#[cfg(feature = "hyper")]
pub use graceful::{until, Cut, DrainTimeout, GracefulConnection, GracefulShutdown, Watched};
#[cfg(feature = "hyper")]
pub use hyper_rt::{Executor, Timer};
