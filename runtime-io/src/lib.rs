//! Sprint's I/O drivers and sockets: an epoll driver (through mio) behind
//! sprint-core's driver seam; TCP, UDP and Unix-domain sockets with
//! futures-io's traits. The io_uring driver and buffer pools are not built
//! yet: asking for io_uring falls back to epoll and says so.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod driver;
mod driver_slot;
mod evented;
pub mod net;
mod readiness;
