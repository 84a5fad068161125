//! mimalloc as an optional global allocator (feature `mimalloc`): the
//! program installs it, the runtime sets its reclaim policy per level,
//! and [`collect`] returns freed memory to the OS.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sprint_alloc::mimalloc::MiMalloc = sprint_alloc::mimalloc::MiMalloc;
//! ```

pub use mimalloc::MiMalloc;

/// `mi_option_purge_delay`: the same index in mimalloc v2 and v3's
/// `mi_option_e` (after show_errors … deprecated_segment_reset and
/// eager_commit_delay).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Whether mimalloc is this program's global allocator: a fresh heap
/// block lies in one of mimalloc's regions.
pub fn is_global() -> bool {
    let probe = Box::new(0u64);
    // SAFETY: a query on a live pointer.
    unsafe { libmimalloc_sys::mi_is_in_heap_region((&*probe as *const u64).cast()) }
}

/// How long freed memory waits before going back to the OS, in ms
/// (0: at once; `None`: never).
pub fn set_purge_delay(ms: Option<u32>) {
    let v = ms.map_or(-1, |m| m as libc::c_long);
    // SAFETY: setting a documented option to a valid value.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, v) }
}

/// Returns freed memory to the OS now (`mi_collect(true)`).
pub fn collect() {
    // SAFETY: no preconditions.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
