//! Files: [`File`] (open, read, write, at an offset or at the file
//! position, owned-buffer forms, sync, metadata, length) and the
//! whole-file helpers [`read`], [`read_to_string`] and [`write`].
//!
//! On an io_uring worker whose kernel has the file opcodes (OPENAT, READ,
//! WRITE, FSYNC, STATX and reads at the file position: Linux 5.6 on) the
//! calls are ring operations; elsewhere, and on epoll (which cannot wait
//! on regular files), they run on the runtime's blocking pool. Either way
//! a future dropped in flight never leaves the kernel writing into freed
//! memory (see `backend`). Errors of calls given a path name it, and keep
//! the OS error's kind (`NotFound` stays `NotFound`).
//!
//! ```no_run
//! # async fn f() -> std::io::Result<()> {
//! sprint_io::fs::write("/tmp/greeting", b"hello").await?;
//! assert_eq!(sprint_io::fs::read_to_string("/tmp/greeting").await?, "hello");
//! let f = sprint_io::fs::File::open("/tmp/greeting").await?;
//! let mut buf = [0u8; 3];
//! let n = f.read_at(&mut buf, 2).await?;
//! assert_eq!(&buf[..n], b"llo");
//! # Ok(())
//! # }
//! ```

mod backend;
mod file;
mod metadata;
mod whole;

pub use file::{File, OpenOptions};
pub use metadata::Metadata;
pub use whole::{read, read_to_string, write};

use std::io;
use std::path::{Path, PathBuf};

/// An error of a call given a path: which call, which path, and the OS
/// error (the `io::Error` that carries this has the OS error's kind).
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct PathError {
    /// The call: `open`, `read`, `write`, `read_to_string`.
    pub op: &'static str,
    /// The path it was given.
    pub path: PathBuf,
    /// What the OS said.
    #[source]
    pub source: io::Error,
}

impl PathError {
    /// `source` as an `io::Error` of the same kind that names `path`.
    pub(crate) fn wrap(op: &'static str, path: &Path, source: io::Error) -> io::Error {
        let kind = source.kind();
        io::Error::new(
            kind,
            PathError {
                op,
                path: path.into(),
                source,
            },
        )
    }
}
