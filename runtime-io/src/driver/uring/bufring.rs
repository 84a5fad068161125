//! The provided-buffer ring: receive buffers the kernel picks at
//! completion time, so a waiting receive holds no memory.
//!
//! A receive submitted with `BUFFER_SELECT` names a buffer group instead
//! of a buffer; when data arrives the kernel takes the next buffer from
//! this ring and says which in the CQE (its buffer id). The stream that
//! got it reads the bytes out and gives the id back ([`BufRing::push`]),
//! which puts the buffer at the ring's tail again. With 1,000 idle
//! connections that is 1,000 receives in flight and no memory held.
//!
//! The ring is a page of [`BufRingEntry`]s shared with the kernel: the
//! driver writes entries and publishes them by storing the tail; the
//! kernel consumes from the head. The buffers themselves are one block
//! from the worker's arena. The ring lives in the driver's locked state,
//! so only one thread at a time writes entries.

use crate::buf::BufferPool;
use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering::Release};
use std::sync::Arc;

/// Buffers in the ring (a power of two: the ring index is masked).
pub(super) const RING_BUFFERS: u16 = 256;
/// Bytes in each buffer.
pub(super) const RING_BUFFER_SIZE: usize = 16 * 1024;
/// The buffer group id receives name.
pub(super) const BGID: u16 = 0;

/// A provided-buffer ring: `RING_BUFFERS` buffers the kernel takes from
/// and the driver gives back.
pub(super) struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    tail: u16,
    /// Owns the buffers' memory (read through `base`).
    _memory: BufferPool,
    base: *mut u8,
}

// SAFETY: the mapping and the buffers are owned by this value; it is only
// touched under the driver's state lock.
unsafe impl Send for BufRing {}

impl BufRing {
    /// Maps the ring, takes the buffers from `arena` and registers both
    /// with `ring` as group `BGID`. `ring` must be dropped before this
    /// value (the kernel reads the mapping until then).
    pub(super) fn new(
        ring: &IoUring,
        arena: Option<&Arc<sprint_alloc::Arena>>,
    ) -> io::Result<BufRing> {
        let map_len = (RING_BUFFERS as usize * std::mem::size_of::<BufRingEntry>()).max(4096);
        // SAFETY: an anonymous private mapping with no address hint.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let memory = BufferPool::new_in(arena, RING_BUFFERS as usize, RING_BUFFER_SIZE);
        let memory = match memory {
            Ok((m, _)) => m,
            Err(e) => {
                // SAFETY: mapped just above with this length.
                unsafe { libc::munmap(entries, map_len) };
                return Err(e);
            }
        };
        let base = memory.iovecs()[0].iov_base.cast::<u8>();
        let mut br = BufRing {
            entries: entries.cast(),
            map_len,
            tail: 0,
            _memory: memory,
            base,
        };
        // SAFETY: the mapping is page-aligned, zeroed, large enough for
        // RING_BUFFERS entries, and lives until the ring is dropped (the
        // handle drops the ring before this).
        let r = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(br.entries as u64, RING_BUFFERS, BGID, 0)
        };
        r?;
        for bid in 0..RING_BUFFERS {
            br.push(bid);
        }
        Ok(br)
    }

    /// The first buffer's address; buffer `bid` is `RING_BUFFER_SIZE`
    /// bytes at `base + bid * RING_BUFFER_SIZE`.
    pub(super) fn base(&self) -> *const u8 {
        self.base
    }

    /// Gives buffer `bid` back to the kernel.
    pub(super) fn push(&mut self, bid: u16) {
        let mask = RING_BUFFERS - 1;
        // SAFETY: the index is masked into the mapping; the entry is only
        // written here, under the state lock, and the kernel reads it only
        // after the tail store below publishes it.
        unsafe {
            let e = &mut *self.entries.add((self.tail & mask) as usize);
            e.set_addr(self.base.add(bid as usize * RING_BUFFER_SIZE) as u64);
            e.set_len(RING_BUFFER_SIZE as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail field of the first entry, as the kernel's ABI
        // lays it out; an aligned u16 the kernel reads atomically.
        let tail = unsafe { &*BufRingEntry::tail(self.entries).cast::<AtomicU16>() };
        tail.store(self.tail, Release);
    }
}

impl super::ops::GiveBack for Option<BufRing> {
    fn give_back(&mut self, bid: u16) {
        if let Some(br) = self {
            br.push(bid);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; the ring that used it
        // is gone (see `UringHandle`'s field order).
        unsafe { libc::munmap(self.entries.cast(), self.map_len) };
    }
}
