//! Sprint's I/O drivers and sockets: an io_uring driver and an epoll
//! driver (through mio) behind sprint-core's driver seam, chosen at start
//! by probing io_uring (falling back to epoll with the reason reported);
//! TCP, UDP and Unix-domain sockets with futures-io's traits and an
//! owned-buffer API; files ([`fs`]) on the ring or the blocking pool;
//! child processes ([`process`]) awaited through pidfds; a bounded buffer
//! pool per worker.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
// On Windows the readiness machinery that sockets register with has no
// sockets to serve yet (they are Unix-only), so parts of it go unused.
#![cfg_attr(windows, allow(dead_code))]

pub mod buf;
pub mod driver;
mod driver_slot;
mod evented;
// Files need the blocking pool or io_uring, and fds: Linux only here.
#[cfg(target_os = "linux")]
pub mod fs;
// Sockets are built on file descriptors: Unix only. On Windows the
// runtime, its poller and the buffer pools build, without sockets.
#[cfg(unix)]
pub mod net;
// Child processes: pidfds and pipes on the driver (Linux).
#[cfg(target_os = "linux")]
pub mod process;
mod readiness;
#[cfg(unix)]
mod ready_io;
#[cfg(test)]
mod testing;
