//! `File` and `OpenOptions`: each call runs on the ring or the blocking
//! pool ([`Backend`], chosen at open), with the same results on both.
//!
//! `read` and `write` use the file position (the kernel's, so `O_APPEND`
//! and a file shared with std behave as usual); `read_at` and `write_at`
//! name the offset and leave the position alone. The borrowed forms copy
//! through a buffer the operation owns; the `_owned` forms lend the
//! caller's buffer, as sockets do. A future dropped in flight never leaves
//! the kernel writing into freed memory, but the operation it started may
//! still complete: a dropped `read` may have moved the file position.

#[cfg(target_os = "linux")]
use super::backend::Kind;
use super::backend::{blocking, blocking_with, cvt, Backend};
use super::metadata::{Metadata, STATX_MASK};
use super::PathError;
use crate::buf::{IoBuf, IoBufMut};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

/// The offset io_uring reads as "the file position".
const AT_POSITION: u64 = u64::MAX;
/// The longest single read or write (as Linux caps one `read(2)`).
const MAX_IO: usize = 0x7fff_f000;

/// How to open a file, as std's `OpenOptions`.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Nothing set (mode 0o666 before the umask, as std's).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, on: bool) -> &mut Self {
        self.read = on;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, on: bool) -> &mut Self {
        self.write = on;
        self
    }

    /// Every write goes to the end (implies writing).
    pub fn append(&mut self, on: bool) -> &mut Self {
        self.append = on;
        self
    }

    /// Cut the file to 0 bytes (needs writing).
    pub fn truncate(&mut self, on: bool) -> &mut Self {
        self.truncate = on;
        self
    }

    /// Create the file if it is missing (needs writing or appending).
    pub fn create(&mut self, on: bool) -> &mut Self {
        self.create = on;
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, on: bool) -> &mut Self {
        self.create_new = on;
        self
    }

    /// The permission bits of a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// The `open(2)` flags, refusing what std refuses (as `InvalidInput`).
    fn flags(&self) -> io::Result<i32> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => libc::O_RDONLY,
            (false, true, false) => libc::O_WRONLY,
            (true, true, false) => libc::O_RDWR,
            (false, _, true) => libc::O_WRONLY | libc::O_APPEND,
            (true, _, true) => libc::O_RDWR | libc::O_APPEND,
            (false, false, false) => {
                return Err(invalid(
                    "open: neither read, write nor append was asked for",
                ))
            }
        };
        let writes = self.write || self.append;
        if (self.truncate || self.create || self.create_new) && !writes {
            return Err(invalid(
                "open: truncate, create and create_new need write or append",
            ));
        }
        if self.truncate && self.append && !self.create_new {
            return Err(invalid("open: truncate and append together"));
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        };
        Ok(access | creation | libc::O_CLOEXEC)
    }

    /// Opens `path`; an error names the path.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        self.open_inner(path)
            .await
            .map_err(|e| PathError::wrap("open", path, e))
    }

    async fn open_inner(&self, path: &Path) -> io::Result<File> {
        let flags = self.flags()?;
        let mode = self.mode;
        let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte")
        })?;
        let backend = Backend::current()?;
        let fd = match &backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => {
                let (r, _) = super::backend::uring_op(h, Kind::Open, cpath, |p| {
                    io_uring::opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), p.as_ptr())
                        .flags(flags)
                        .mode(mode)
                        .build()
                })
                .await;
                // SAFETY: the kernel opened this fd for us.
                unsafe { OwnedFd::from_raw_fd(r?) }
            }
            Backend::Blocking => {
                blocking(move || {
                    // SAFETY: `cpath` is NUL-terminated; open has no other
                    // memory preconditions.
                    let fd = unsafe { libc::open(cpath.as_ptr(), flags, mode) };
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // SAFETY: a new fd this job owns.
                    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
                })
                .await?
            }
        };
        Ok(File {
            fd: Some(Arc::new(fd)),
            backend,
        })
    }
}

/// An open file; see the module notes for where its calls run.
#[derive(Debug)]
pub struct File {
    /// Shared with blocking jobs in flight (they keep it open until they
    /// return); `None` only after `into_std`.
    fd: Option<Arc<OwnedFd>>,
    backend: Backend,
}

impl File {
    /// Opens `path` for reading.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` for writing, creating it or cutting it to 0 bytes.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// The options to open a file with.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file (its operations run on this thread's
    /// driver or the blocking pool, as an opened one's).
    pub fn from_std(file: std::fs::File) -> io::Result<File> {
        Ok(File {
            fd: Some(Arc::new(file.into())),
            backend: Backend::current()?,
        })
    }

    /// Hands the file to std. A job a dropped future left on the blocking
    /// pool may still hold the fd: std then gets a duplicate (`dup`),
    /// which shares the file position; the error is `dup`'s.
    pub fn into_std(mut self) -> io::Result<std::fs::File> {
        let fd = self.fd.take().unwrap_or_else(|| unreachable!("taken once"));
        match Arc::try_unwrap(fd) {
            Ok(fd) => Ok(fd.into()),
            Err(shared) => Ok(shared.try_clone()?.into()),
        }
    }

    fn fd(&self) -> &Arc<OwnedFd> {
        self.fd
            .as_ref()
            .unwrap_or_else(|| unreachable!("the fd lives until into_std"))
    }

    fn raw(&self) -> RawFd {
        self.fd().as_raw_fd()
    }

    /// Reads into `buf`'s whole capacity at `offset` (`None`: the file
    /// position); its length becomes the bytes read.
    async fn read_owned_at<B: IoBufMut>(
        &self,
        buf: B,
        offset: Option<u64>,
    ) -> (io::Result<usize>, B) {
        let fd = self.raw();
        let (r, mut buf) = match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => {
                let (r, b) = super::backend::uring_op(h, Kind::Plain, buf, |b| {
                    let len = b.bytes_total().min(MAX_IO) as u32;
                    io_uring::opcode::Read::new(io_uring::types::Fd(fd), b.stable_mut_ptr(), len)
                        .offset(offset.unwrap_or(AT_POSITION))
                        .build()
                })
                .await;
                (r.map(|n| n as usize), b)
            }
            Backend::Blocking => {
                let fd = self.fd().clone();
                blocking_with(buf, move |b| {
                    let (ptr, len) = (b.stable_mut_ptr().cast(), b.bytes_total().min(MAX_IO));
                    // SAFETY: the buffer is valid for `len` bytes of writes
                    // and this job owns it until the call returns.
                    cvt(unsafe {
                        match offset {
                            Some(off) => libc::pread(fd.as_raw_fd(), ptr, len, off as i64),
                            None => libc::read(fd.as_raw_fd(), ptr, len),
                        }
                    })
                })
                .await
            }
        };
        if let Ok(n) = r {
            // SAFETY: the read initialised the first `n` bytes.
            unsafe { buf.set_init(n) };
        }
        (r, buf)
    }

    /// Writes `buf`'s bytes at `offset` (`None`: the file position).
    async fn write_owned_at<B: IoBuf>(
        &self,
        buf: B,
        offset: Option<u64>,
    ) -> (io::Result<usize>, B) {
        let fd = self.raw();
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => {
                let (r, b) = super::backend::uring_op(h, Kind::Plain, buf, |b| {
                    let len = b.bytes_init().min(MAX_IO) as u32;
                    io_uring::opcode::Write::new(io_uring::types::Fd(fd), b.stable_ptr(), len)
                        .offset(offset.unwrap_or(AT_POSITION))
                        .build()
                })
                .await;
                (r.map(|n| n as usize), b)
            }
            Backend::Blocking => {
                let fd = self.fd().clone();
                blocking_with(buf, move |b| {
                    let (ptr, len) = (b.stable_ptr().cast(), b.bytes_init().min(MAX_IO));
                    // SAFETY: the buffer's first `len` bytes are initialised
                    // and this job owns it until the call returns.
                    cvt(unsafe {
                        match offset {
                            Some(off) => libc::pwrite(fd.as_raw_fd(), ptr, len, off as i64),
                            None => libc::write(fd.as_raw_fd(), ptr, len),
                        }
                    })
                })
                .await
            }
        }
    }

    /// Reads into `buf` from the file position, moving it; 0 at the end.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (r, tmp) = self
            .read_owned_at(Vec::with_capacity(buf.len()), None)
            .await;
        let n = r?;
        buf[..n].copy_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads into `buf`'s whole capacity from the file position (the
    /// kernel writes straight into it); its length becomes the count.
    pub async fn read_owned<B: IoBufMut>(&mut self, buf: B) -> (io::Result<usize>, B) {
        self.read_owned_at(buf, None).await
    }

    /// Reads the rest of the file onto the end of `out`.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        let mut chunk = Vec::with_capacity(64 << 10);
        loop {
            let (r, c) = self.read_owned_at(chunk, None).await;
            chunk = c;
            if r? == 0 {
                return Ok(out.len() - start);
            }
            out.extend_from_slice(&chunk);
        }
    }

    /// Writes some of `buf` at the file position, moving it.
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (r, _) = self
            .write_owned_at(buf[..buf.len().min(MAX_IO)].to_vec(), None)
            .await;
        r
    }

    /// Writes `buf`'s bytes at the file position from its own memory.
    pub async fn write_owned<B: IoBuf>(&mut self, buf: B) -> (io::Result<usize>, B) {
        self.write_owned_at(buf, None).await
    }

    /// Writes all of `buf` at the file position.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Reads into `buf` at `offset` (the file position stays); 0 past
    /// the end.
    pub async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let (r, tmp) = self
            .read_owned_at(Vec::with_capacity(buf.len()), Some(offset))
            .await;
        let n = r?;
        buf[..n].copy_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads into `buf`'s whole capacity at `offset`, straight from the
    /// kernel; its length becomes the count.
    pub async fn read_at_owned<B: IoBufMut>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        self.read_owned_at(buf, Some(offset)).await
    }

    /// Writes some of `buf` at `offset` (the file position stays).
    pub async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let (r, _) = self
            .write_owned_at(buf[..buf.len().min(MAX_IO)].to_vec(), Some(offset))
            .await;
        r
    }

    /// Writes `buf`'s bytes at `offset` from its own memory.
    pub async fn write_at_owned<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<usize>, B) {
        self.write_owned_at(buf, Some(offset)).await
    }

    async fn sync(&self, data_only: bool) -> io::Result<()> {
        match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => {
                let fd = io_uring::types::Fd(self.raw());
                let flags = if data_only {
                    io_uring::types::FsyncFlags::DATASYNC
                } else {
                    io_uring::types::FsyncFlags::empty()
                };
                let (r, ()) = super::backend::uring_op(h, Kind::Plain, (), |_| {
                    io_uring::opcode::Fsync::new(fd).flags(flags).build()
                })
                .await;
                r.map(drop)
            }
            Backend::Blocking => {
                let fd = self.fd().clone();
                blocking(move || {
                    // SAFETY: fsync on an fd this job keeps open.
                    let r = unsafe {
                        if data_only {
                            libc::fdatasync(fd.as_raw_fd())
                        } else {
                            libc::fsync(fd.as_raw_fd())
                        }
                    };
                    cvt(r as isize).map(drop)
                })
                .await
            }
        }
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub async fn sync_all(&self) -> io::Result<()> {
        self.sync(false).await
    }

    /// Flushes the data to the device (`fdatasync`).
    pub async fn sync_data(&self) -> io::Result<()> {
        self.sync(true).await
    }

    /// The file's metadata (`statx`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        // SAFETY: all-zero bytes are a valid statx (plain integers).
        let stx: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let (r, stx) = match &self.backend {
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => {
                let fd = io_uring::types::Fd(self.raw());
                super::backend::uring_op(h, Kind::Plain, stx, |s| {
                    let s: *mut libc::statx = &mut **s;
                    io_uring::opcode::Statx::new(fd, c"".as_ptr(), s.cast())
                        .flags(libc::AT_EMPTY_PATH)
                        .mask(STATX_MASK)
                        .build()
                })
                .await
            }
            Backend::Blocking => {
                let fd = self.fd().clone();
                let (r, stx) = blocking_with(stx, move |s| {
                    // SAFETY: `s` is a writable statx; the empty path with
                    // AT_EMPTY_PATH names `fd` itself.
                    let r = unsafe {
                        libc::statx(
                            fd.as_raw_fd(),
                            c"".as_ptr(),
                            libc::AT_EMPTY_PATH,
                            STATX_MASK,
                            &mut **s,
                        )
                    };
                    cvt(r as isize).map(|n| n as i32)
                })
                .await;
                (r, stx)
            }
        };
        r?;
        Ok(Metadata::from_statx(*stx))
    }

    /// Cuts or extends the file to `size` bytes (on the blocking pool on
    /// either driver: io_uring's FTRUNCATE is too new to count on).
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let size = i64::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("set_len: {size} bytes is past the largest file offset"),
            )
        })?;
        let fd = self.fd().clone();
        blocking(move || {
            // SAFETY: ftruncate on an fd this job keeps open.
            cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) } as isize).map(drop)
        })
        .await
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let Some(fd) = self.fd.take().and_then(Arc::into_inner) else {
            // `into_std` took it, or a blocking job closes it when done.
            return;
        };
        match &self.backend {
            // Through the ring: after any operation still queued for it.
            #[cfg(target_os = "linux")]
            Backend::Uring(h) => h.close(fd.into_raw_fd()),
            Backend::Blocking => drop(fd),
        }
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd().as_fd()
    }
}
