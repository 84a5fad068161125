//! Buffers the kernel may own: the owned-buffer traits and each worker's
//! bounded pool of fixed-size buffers.
//!
//! io_uring reads into and writes from memory while the caller's future
//! may already be gone, so an operation takes its buffer by value and gives
//! it back with the result (`read_owned`, `write_owned`); if the future is
//! dropped, the driver keeps the buffer until the kernel is done with it.
//!
//! The pool is one allocation per worker, cut into `count` buffers of
//! `size` bytes, handed out as [`PoolBuf`] and returned on drop: in steady
//! state no I/O operation allocates. The io_uring driver registers the
//! pool's buffers with the kernel (fixed buffers) where the level asks, so
//! a write from a pool buffer skips the kernel's page pinning.

use parking_lot::Mutex;
use std::alloc::Layout;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A buffer whose bytes stay at one address while the kernel reads them,
/// even if the value moves.
///
/// # Safety
/// `stable_ptr` must point to `bytes_init` initialised bytes that neither
/// move nor are freed while the value lives, however it is moved.
pub unsafe trait IoBuf: Unpin + Send + 'static {
    /// The first byte.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes are initialised (and are written by a write).
    fn bytes_init(&self) -> usize;
}

/// A buffer the kernel may write into.
///
/// # Safety
/// As [`IoBuf`], and `stable_mut_ptr` is valid for `bytes_total` bytes of
/// writes for as long as the value lives.
pub unsafe trait IoBufMut: IoBuf {
    /// The first byte, for writing.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// How many bytes a read may fill.
    fn bytes_total(&mut self) -> usize;
    /// Records that the first `n` bytes are initialised.
    ///
    /// # Safety
    /// The first `n` bytes (at most `bytes_total`) must be initialised.
    unsafe fn set_init(&mut self, n: usize);
}

// SAFETY: a Vec's heap block does not move when the Vec does; the pointer
// is valid for `len` initialised bytes.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the heap block holds `capacity` bytes; `set_init` is the caller's
// promise that they were written.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller promises the first `n` bytes were written and
        // `n` is at most the capacity.
        unsafe { self.set_len(n) }
    }
}

// SAFETY: a boxed slice's block does not move with the box.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a boxed slice is initialised throughout.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.len()
    }
    unsafe fn set_init(&mut self, _: usize) {}
}

// SAFETY: static data never moves or goes away.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

/// Buffers per worker pool.
pub const POOL_BUFFERS: usize = 128;
/// Bytes per pool buffer.
pub const POOL_BUFFER_SIZE: usize = 16 * 1024;

static POOL_IDS: AtomicU64 = AtomicU64::new(1);

/// Where a pool's memory came from.
enum Backing {
    Heap(Layout),
    /// The worker's arena, kept alive while the pool is.
    Arena(#[allow(dead_code)] std::sync::Arc<sprint_alloc::Arena>),
}

pub(crate) struct PoolShared {
    base: NonNull<u8>,
    backing: Backing,
    size: usize,
    count: usize,
    // Registered buffers are io_uring's.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    id: u64,
    free: Mutex<Vec<u16>>,
}

// SAFETY: the block is plain memory owned by the pool; each buffer in it is
// handed to one `PoolBuf` at a time (the free list is behind a mutex).
unsafe impl Send for PoolShared {}
// SAFETY: as above; shared access only reads `base` and locks `free`.
unsafe impl Sync for PoolShared {}

impl Drop for PoolShared {
    fn drop(&mut self) {
        if let Backing::Heap(layout) = self.backing {
            // SAFETY: allocated in `BufferPool::new` with this layout;
            // every `PoolBuf` holds an `Arc` to this, so none is alive.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), layout) }
        }
    }
}

/// A bounded pool of fixed-size buffers (cheap to clone: a handle).
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<PoolShared>,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("buffers", &self.shared.count)
            .field("size", &self.shared.size)
            .field("free", &self.available())
            .finish()
    }
}

impl BufferPool {
    /// A pool of `count` buffers of `size` bytes carved from `arena` (the
    /// worker's), or from the heap when the arena has no room; the second
    /// value says which.
    pub(crate) fn new_in(
        arena: Option<&std::sync::Arc<sprint_alloc::Arena>>,
        count: usize,
        size: usize,
    ) -> std::io::Result<(BufferPool, &'static str)> {
        if let Some(a) = arena {
            let total = Self::check(count, size)?;
            if let Some(base) = a.alloc(total, 4096) {
                // Arena memory is fresh anonymous memory: zeroed.
                return Ok((
                    BufferPool::from_parts(base, Backing::Arena(a.clone()), count, size),
                    "the worker's arena",
                ));
            }
        }
        Ok((BufferPool::new(count, size)?, "the heap"))
    }

    fn check(count: usize, size: usize) -> std::io::Result<usize> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
        if count == 0 || count > u16::MAX as usize {
            return Err(bad("a buffer pool holds 1 to 65535 buffers"));
        }
        if size == 0 || size > u32::MAX as usize {
            return Err(bad("a pool buffer holds 1 byte to 4 GiB"));
        }
        count
            .checked_mul(size)
            .ok_or_else(|| bad("the buffer pool's size overflows"))
    }

    fn from_parts(base: NonNull<u8>, backing: Backing, count: usize, size: usize) -> BufferPool {
        BufferPool {
            shared: Arc::new(PoolShared {
                base,
                backing,
                size,
                count,
                id: POOL_IDS.fetch_add(1, Relaxed),
                free: Mutex::new((0..count as u16).rev().collect()),
            }),
        }
    }

    /// A pool of `count` buffers of `size` bytes from the heap,
    /// page-aligned and zeroed.
    pub fn new(count: usize, size: usize) -> std::io::Result<BufferPool> {
        let total = Self::check(count, size)?;
        let layout = Layout::from_size_align(total, 4096).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad pool layout")
        })?;
        // SAFETY: the layout has a non-zero size.
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        Ok(BufferPool::from_parts(
            base,
            Backing::Heap(layout),
            count,
            size,
        ))
    }

    /// The worker's pool on this thread (a pool of its own on a thread
    /// outside the workers).
    pub fn current() -> std::io::Result<BufferPool> {
        crate::driver::current().map(|d| d.pool().clone())
    }

    /// A free buffer (length 0, capacity `size`), or `None` when all are
    /// lent out: the pool is bounded and never grows.
    pub fn take(&self) -> Option<PoolBuf> {
        let index = self.shared.free.lock().pop()?;
        Some(PoolBuf {
            pool: self.shared.clone(),
            index,
            len: 0,
        })
    }

    /// Buffers free now.
    pub fn available(&self) -> usize {
        self.shared.free.lock().len()
    }

    /// Buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.shared.count
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.shared.size
    }

    // Registered buffers are io_uring's.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    /// One iovec per buffer, in index order, for registration.
    #[cfg(unix)]
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn iovecs(&self) -> Vec<libc::iovec> {
        (0..self.shared.count)
            .map(|i| libc::iovec {
                // SAFETY: `i * size` is inside the block.
                iov_base: unsafe { self.shared.base.as_ptr().add(i * self.shared.size) }.cast(),
                iov_len: self.shared.size,
            })
            .collect()
    }
}

/// A buffer lent by a [`BufferPool`]; goes back to it on drop.
pub struct PoolBuf {
    pool: Arc<PoolShared>,
    index: u16,
    len: usize,
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuf")
            .field("index", &self.index)
            .field("len", &self.len)
            .finish()
    }
}

impl PoolBuf {
    fn ptr(&self) -> *mut u8 {
        // SAFETY: `index < count`, so the offset is inside the block.
        unsafe {
            self.pool
                .base
                .as_ptr()
                .add(self.index as usize * self.pool.size)
        }
    }

    /// Bytes the buffer can hold.
    pub fn capacity(&self) -> usize {
        self.pool.size
    }

    /// Sets the length (at most the capacity; the bytes are always
    /// initialised, the pool is zeroed at start).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.pool.size);
    }

    /// Copies as much of `data` as fits after the current length; returns
    /// how much it took.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.pool.size - self.len);
        self.spare()[..n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    fn spare(&mut self) -> &mut [u8] {
        let len = self.len;
        // SAFETY: this buffer is lent to `self` alone; the whole block was
        // zeroed, so every byte is initialised.
        let all = unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.pool.size) };
        &mut all[len..]
    }

    // Registered buffers are io_uring's.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// The registered-buffer index of this buffer in the pool `pool_id`.
    pub(crate) fn fixed_index(&self, pool_id: u64) -> Option<u16> {
        (self.pool.id == pool_id).then_some(self.index)
    }
}

impl Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: lent to `self` alone; `len <= size`, initialised.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len) }
    }
}

impl DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }
}

impl Drop for PoolBuf {
    fn drop(&mut self) {
        self.pool.free.lock().push(self.index);
    }
}

// SAFETY: the buffer's bytes are in the pool's block, which lives as long
// as the `Arc` this holds, wherever the `PoolBuf` moves.
unsafe impl IoBuf for PoolBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: valid for `size` bytes of writes, all initialised (zeroed pool).
unsafe impl IoBufMut for PoolBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.pool.size
    }
    unsafe fn set_init(&mut self, n: usize) {
        self.set_len(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_recycled() {
        let pool = BufferPool::new(2, 64).unwrap();
        let mut a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none(), "the pool must not grow");
        assert_eq!(a.extend_from_slice(&[7; 100]), 64);
        assert_eq!(&a[..], &[7; 64][..]);
        let addr = a.as_ptr();
        drop(a);
        let c = pool.take().unwrap();
        assert_eq!(c.as_ptr(), addr, "a freed buffer is lent again");
        drop((b, c));
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(BufferPool::new(0, 64).is_err());
        assert!(BufferPool::new(70_000, 64).is_err());
        assert!(BufferPool::new(4, 0).is_err());
    }
}
