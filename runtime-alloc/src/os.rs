//! The operating system's side of an arena: reserving address space,
//! committing, huge pages, NUMA binding, locking and prefaulting. Linux
//! has all of it; other Unixes have mmap, mprotect and mlock; Windows has
//! VirtualAlloc and VirtualLock. What a platform lacks is an
//! `ErrorKind::Unsupported` error that says so, which the arena turns into
//! a note (or a strict-mode error), never a pretence.

use std::io;

/// An error for a setting this platform does not have.
#[allow(dead_code)] // Linux has every setting.
fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what}: unsupported on this platform"),
    )
}

#[cfg(unix)]
mod imp {
    use super::*;

    pub(crate) fn page_size() -> usize {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            p as usize
        } else {
            4096
        }
    }

    /// Reserves `len` bytes of address space with no access, starting at a
    /// multiple of `align` (a power of two).
    pub(crate) fn reserve(len: usize, align: usize) -> io::Result<*mut u8> {
        // SAFETY: an anonymous reservation with no access and no hint.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + align,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let raw_addr = raw as usize;
        let aligned = raw_addr.next_multiple_of(align);
        // SAFETY: trimming the unaligned head and the tail of our own
        // reservation.
        unsafe {
            if aligned > raw_addr {
                libc::munmap(raw, aligned - raw_addr);
            }
            let end = aligned + len;
            let raw_end = raw_addr + len + align;
            if raw_end > end {
                libc::munmap(end as *mut libc::c_void, raw_end - end);
            }
        }
        Ok(aligned as *mut u8)
    }

    /// Returns a reservation.
    ///
    /// # Safety
    /// `[base, base + len)` is a whole reservation from `reserve`, and
    /// nothing in it is used any more.
    pub(crate) unsafe fn release(base: *mut u8, len: usize) {
        // SAFETY: the caller's contract.
        unsafe { libc::munmap(base.cast(), len) };
    }

    /// Makes `[ptr, ptr + len)` readable and writable.
    ///
    /// # Safety
    /// The range lies inside one reservation.
    pub(crate) unsafe fn commit(ptr: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: the caller's contract.
        if unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Locks `[ptr, ptr + len)` in RAM.
    ///
    /// # Safety
    /// The range is committed memory of one reservation.
    pub(crate) unsafe fn lock(ptr: *mut u8, len: usize) -> io::Result<()> {
        // On Linux the raw system call: AddressSanitizer intercepts
        // mlock(3) as a no-op, which would report memory locked that is
        // not.
        #[cfg(target_os = "linux")]
        // SAFETY: the caller's contract.
        let r = unsafe { libc::syscall(libc::SYS_mlock, ptr, len) } as libc::c_int;
        #[cfg(not(target_os = "linux"))]
        // SAFETY: the caller's contract.
        let r = unsafe { libc::mlock(ptr.cast(), len) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Unlocks a range locked by `lock`.
    ///
    /// # Safety
    /// The range lies inside one reservation.
    pub(crate) unsafe fn unlock(ptr: *mut u8, len: usize) {
        #[cfg(target_os = "linux")]
        // SAFETY: the caller's contract.
        unsafe {
            libc::syscall(libc::SYS_munlock, ptr, len)
        };
        #[cfg(not(target_os = "linux"))]
        // SAFETY: the caller's contract.
        unsafe {
            libc::munlock(ptr.cast(), len)
        };
    }

    /// RLIMIT_MEMLOCK, in words.
    pub(crate) fn memlock_limit() -> String {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills a valid struct.
        if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
            return "unknown".into();
        }
        if r.rlim_cur == libc::RLIM_INFINITY {
            "unlimited".into()
        } else {
            format!("{} KiB", r.rlim_cur / 1024)
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;

    /// Replaces `[ptr, ptr + len)` of a reservation with explicit huge
    /// pages.
    ///
    /// # Safety
    /// The range is the unused start of one reservation, 2 MiB-aligned.
    pub(crate) unsafe fn map_huge(ptr: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: the caller's contract; MAP_FIXED replaces our own pages.
        let p = unsafe {
            libc::mmap(
                ptr.cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_HUGETLB,
                -1,
                0,
            )
        };
        if p != ptr.cast() {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks for transparent huge pages on a range.
    ///
    /// # Safety
    /// The range lies inside one reservation.
    pub(crate) unsafe fn advise_huge(ptr: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: the caller's contract.
        if unsafe { libc::madvise(ptr.cast(), len, libc::MADV_HUGEPAGE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    const MPOL_BIND: libc::c_int = 2;
    const NODES: usize = 1024;

    /// Binds a range's memory to NUMA node `node`.
    ///
    /// # Safety
    /// The range is one reservation.
    pub(crate) unsafe fn bind(ptr: *mut u8, len: usize, node: usize) -> io::Result<()> {
        let mut mask = [0u64; NODES / 64];
        if node >= NODES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("NUMA node {node} is beyond the supported {NODES}"),
            ));
        }
        mask[node / 64] |= 1 << (node % 64);
        // SAFETY: mbind on the caller's range with a valid mask of NODES
        // bits.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                ptr,
                len,
                MPOL_BIND as libc::c_long,
                mask.as_ptr(),
                NODES as libc::c_ulong,
                0 as libc::c_uint,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The node the memory policy at `ptr` binds to, if it binds.
    pub(crate) fn bound_node(ptr: *mut u8) -> io::Result<Option<usize>> {
        const MPOL_F_ADDR: libc::c_ulong = 2;
        let mut mode: libc::c_int = 0;
        let mut mask = [0u64; NODES / 64];
        // SAFETY: get_mempolicy with valid out-pointers; MPOL_F_ADDR only
        // looks the address up.
        let r = unsafe {
            libc::syscall(
                libc::SYS_get_mempolicy,
                &mut mode as *mut libc::c_int,
                mask.as_mut_ptr(),
                NODES as libc::c_ulong,
                ptr,
                MPOL_F_ADDR,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if mode != MPOL_BIND {
            return Ok(None);
        }
        Ok((0..NODES).find(|n| mask[n / 64] & (1 << (n % 64)) != 0))
    }

    /// Faults a committed range in with one call; false where the kernel
    /// lacks MADV_POPULATE_WRITE (before 5.14).
    ///
    /// # Safety
    /// The range is committed memory of one reservation.
    pub(crate) unsafe fn populate(ptr: *mut u8, len: usize) -> bool {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        // SAFETY: the caller's contract.
        unsafe { libc::madvise(ptr.cast(), len, MADV_POPULATE_WRITE) == 0 }
    }
}

#[cfg(not(target_os = "linux"))]
mod linux {
    use super::*;

    /// Explicit huge pages are a Linux mapping flag.
    ///
    /// # Safety
    /// None: nothing is done.
    pub(crate) unsafe fn map_huge(_: *mut u8, _: usize) -> io::Result<()> {
        Err(unsupported("explicit huge pages"))
    }

    /// Transparent huge pages are Linux's.
    ///
    /// # Safety
    /// None: nothing is done.
    pub(crate) unsafe fn advise_huge(_: *mut u8, _: usize) -> io::Result<()> {
        Err(unsupported("transparent huge pages"))
    }

    /// NUMA memory policy is Linux's mbind.
    ///
    /// # Safety
    /// None: nothing is done.
    pub(crate) unsafe fn bind(_: *mut u8, _: usize, node: usize) -> io::Result<()> {
        Err(unsupported(&format!("binding memory to NUMA node {node}")))
    }

    /// See `bind`.
    pub(crate) fn bound_node(_: *mut u8) -> io::Result<Option<usize>> {
        Err(unsupported("reading the NUMA memory policy"))
    }

    /// No single-call populate here: the caller touches each page.
    ///
    /// # Safety
    /// None: nothing is done.
    pub(crate) unsafe fn populate(_: *mut u8, _: usize) -> bool {
        false
    }
}

#[cfg(windows)]
mod imp {
    use super::*;
    use windows_sys::Win32::System::Memory::{
        VirtualAlloc, VirtualFree, VirtualLock, VirtualUnlock, MEM_COMMIT, MEM_RELEASE,
        MEM_RESERVE, PAGE_NOACCESS, PAGE_READWRITE,
    };
    use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};

    pub(crate) fn page_size() -> usize {
        // SAFETY: GetSystemInfo fills a plain struct.
        let info: SYSTEM_INFO = unsafe {
            let mut info = std::mem::zeroed();
            GetSystemInfo(&mut info);
            info
        };
        (info.dwPageSize as usize).max(4096)
    }

    /// Reserves `len` bytes; Windows aligns reservations to its 64 KiB
    /// allocation granularity, not to huge pages, so `align` is not
    /// honoured beyond that (huge pages are unsupported here anyway).
    pub(crate) fn reserve(len: usize, _align: usize) -> io::Result<*mut u8> {
        // SAFETY: a fresh reservation with no access.
        let p = unsafe { VirtualAlloc(std::ptr::null(), len, MEM_RESERVE, PAGE_NOACCESS) };
        if p.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(p.cast())
    }

    /// # Safety
    /// `base` is a whole reservation from `reserve`, unused.
    pub(crate) unsafe fn release(base: *mut u8, _len: usize) {
        // SAFETY: the caller's contract.
        unsafe { VirtualFree(base.cast(), 0, MEM_RELEASE) };
    }

    /// # Safety
    /// The range lies inside one reservation.
    pub(crate) unsafe fn commit(ptr: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: the caller's contract.
        if unsafe { VirtualAlloc(ptr.cast(), len, MEM_COMMIT, PAGE_READWRITE) }.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// # Safety
    /// The range is committed memory of one reservation.
    pub(crate) unsafe fn lock(ptr: *mut u8, len: usize) -> io::Result<()> {
        // SAFETY: the caller's contract.
        if unsafe { VirtualLock(ptr.cast(), len) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// # Safety
    /// The range was locked by `lock`.
    pub(crate) unsafe fn unlock(ptr: *mut u8, len: usize) {
        // SAFETY: the caller's contract.
        unsafe { VirtualUnlock(ptr.cast(), len) };
    }

    pub(crate) fn memlock_limit() -> String {
        "the process's working-set size".into()
    }
}

pub(crate) use imp::*;
pub(crate) use linux::*;
