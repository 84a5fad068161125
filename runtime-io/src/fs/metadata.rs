//! A file's metadata, read with `statx` (an io_uring STATX, or the system
//! call on the blocking pool): the one record both paths fill.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

/// What `statx` asks for: the basic fields and the birth time.
pub(crate) const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// A file's size, type, permissions and times.
#[derive(Debug, Clone, Copy)]
pub struct Metadata {
    stx: libc::statx,
}

fn time(t: libc::statx_timestamp) -> SystemTime {
    let d = Duration::new(t.tv_sec.unsigned_abs(), t.tv_nsec);
    if t.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH + d
    } else {
        SystemTime::UNIX_EPOCH - d
    }
}

impl Metadata {
    pub(crate) fn from_statx(stx: libc::statx) -> Metadata {
        Metadata { stx }
    }

    fn file_type(&self) -> u32 {
        self.stx.stx_mode as u32 & libc::S_IFMT
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether this is a symbolic link (only from a call that does not
    /// follow links).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// The permission bits.
    pub fn permissions(&self) -> Permissions {
        Permissions::from_mode(self.stx.stx_mode as u32 & 0o7777)
    }

    /// The last modification.
    pub fn modified(&self) -> io::Result<SystemTime> {
        Ok(time(self.stx.stx_mtime))
    }

    /// The last access.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        Ok(time(self.stx.stx_atime))
    }

    /// The creation (birth) time, where the file system records it.
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.stx.stx_mask & libc::STATX_BTIME == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this file system does not record creation times",
            ));
        }
        Ok(time(self.stx.stx_btime))
    }
}
