//! Sprint's I/O drivers (io_uring with an epoll fallback), sockets and buffer pools: no content yet; the I/O issue fills this crate, and until then Sprint has no network I/O.
