//! Can io_uring run here, and with which features?
//!
//! The probe runs once per process (the answer is cached): it sets up a
//! small ring, which fails where the kernel has no io_uring, where
//! `kernel.io_uring_disabled` or a seccomp filter refuses it, or where the
//! locked-memory limit is too low; then it asks the kernel which opcodes
//! it knows (`IORING_REGISTER_PROBE`) and checks every one the driver
//! uses. Features the opcode list cannot show (multishot accept is a flag,
//! not an opcode) are read from the kernel release. Workers build their
//! rings from the capabilities found here ([`Caps`]); where the probe
//! fails the runtime falls back to epoll and reports the reason.

use io_uring::{opcode, IoUring, Probe};
use std::io;
use std::sync::OnceLock;

/// What probing io_uring found, once per process.
#[derive(Debug, Clone)]
pub(crate) struct Caps {
    /// `IORING_FEAT_EXT_ARG`: a wait can carry its own timeout (5.11).
    pub(crate) ext_arg: bool,
    /// Multishot accept (5.19).
    pub(crate) multishot_accept: bool,
    /// The kernel release, for the start-up report.
    pub(crate) release: String,
}

/// The opcodes the driver cannot work without.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Read::CODE, "READ"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::WriteFixed::CODE, "WRITE_FIXED"),
];

fn kernel_release() -> String {
    // SAFETY: a zeroed utsname is valid; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates `release`.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Whether kernel release `release` ("6.1.0-18-amd64") is at least
/// `major.minor`; an unreadable release is not.
fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

fn setup_error(e: &io::Error) -> String {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|s| s.trim().to_string());
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel has no io_uring (ENOSYS)".to_string(),
        Some(libc::EPERM) => match disabled.as_deref() {
            Some("2") => "io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 2".into(),
            Some("1") => "io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 1 and this process is not in kernel.io_uring_group".into(),
            _ => "io_uring_setup was refused (EPERM), by a seccomp filter or a security module".into(),
        },
        Some(libc::EACCES) => "io_uring_setup was refused (EACCES) by a security module".into(),
        Some(libc::ENOMEM) => "io_uring_setup failed (ENOMEM): locked-memory limit too low for the ring".into(),
        _ => format!("io_uring_setup failed: {e}"),
    };
    why
}

/// Probes io_uring once: can a ring be set up, and does it have every
/// opcode the driver uses?
pub(crate) fn probe() -> Result<Caps, String> {
    static PROBE: OnceLock<Result<Caps, String>> = OnceLock::new();
    PROBE.get_or_init(probe_now).clone()
}

/// The probe itself, uncached.
fn probe_now() -> Result<Caps, String> {
    let ring = IoUring::new(8).map_err(|e| setup_error(&e))?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("io_uring cannot list its opcodes (IORING_REGISTER_PROBE): {e}"))?;
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "this kernel's io_uring lacks IORING_OP_{}",
            missing.join(", IORING_OP_")
        ));
    }
    let release = kernel_release();
    Ok(Caps {
        ext_arg: ring.params().is_feature_ext_arg(),
        // Multishot accept came in 5.19; the opcode probe cannot
        // see flags, so go by the release.
        multishot_accept: release_at_least(&release, 5, 19),
        release,
    })
}
