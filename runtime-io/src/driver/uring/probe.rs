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

use crate::driver::ProbeError;
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
    /// File operations (`sprint_io::fs`) on the ring: OPENAT, WRITE,
    /// FSYNC and STATX, and reads and writes at the file position
    /// (`IORING_FEAT_RW_CUR_POS`, 5.6). Without them files use the
    /// blocking pool.
    pub(crate) fs_ops: bool,
    /// The kernel release, for the start-up report.
    pub(crate) release: String,
}

/// The opcodes file operations need on the ring (READ is required above).
const FS_OPCODES: &[u8] = &[
    opcode::OpenAt::CODE,
    opcode::Write::CODE,
    opcode::Fsync::CODE,
    opcode::Statx::CODE,
];

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

/// Why `io_uring_setup` failed with `errno`, given the value of
/// `kernel.io_uring_disabled` (if readable) and whether this process runs
/// under a seccomp filter.
fn classify_setup_error(errno: Option<i32>, disabled: Option<&str>, seccomp: bool) -> ProbeError {
    match errno {
        Some(libc::ENOSYS) => ProbeError::NoSyscall,
        Some(libc::EPERM) => match disabled {
            Some("2") => ProbeError::DisabledBySysctl,
            Some("1") => ProbeError::NotInGroup,
            _ if seccomp => ProbeError::Seccomp,
            _ => ProbeError::Refused { errno: libc::EPERM },
        },
        Some(libc::EACCES) => ProbeError::Refused {
            errno: libc::EACCES,
        },
        Some(libc::ENOMEM) => ProbeError::LockedMemory,
        errno => ProbeError::Setup { errno },
    }
}

/// Whether the calling thread runs under a seccomp filter (`Seccomp: 2`
/// in its status; filters are per thread, inherited by new threads).
fn under_seccomp_filter() -> bool {
    std::fs::read_to_string("/proc/thread-self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.strip_prefix("Seccomp:").is_some_and(|v| v.trim() == "2"))
    })
}

fn setup_error(e: &io::Error) -> ProbeError {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok();
    classify_setup_error(
        e.raw_os_error(),
        disabled.as_deref().map(str::trim),
        under_seccomp_filter(),
    )
}

/// Probes io_uring once: can a ring be set up, and does it have every
/// opcode the driver uses?
pub(crate) fn probe() -> Result<Caps, ProbeError> {
    static PROBE: OnceLock<Result<Caps, ProbeError>> = OnceLock::new();
    PROBE.get_or_init(probe_now).clone()
}

/// The probe itself, uncached.
fn probe_now() -> Result<Caps, ProbeError> {
    let ring = IoUring::new(8).map_err(|e| setup_error(&e))?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| ProbeError::NoOpcodeList {
            errno: e.raw_os_error(),
        })?;
    let missing: Vec<&'static str> = REQUIRED
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(ProbeError::MissingOpcodes { missing });
    }
    let release = kernel_release();
    Ok(Caps {
        ext_arg: ring.params().is_feature_ext_arg(),
        // Multishot accept came in 5.19; the opcode probe cannot
        // see flags, so go by the release.
        multishot_accept: release_at_least(&release, 5, 19),
        fs_ops: ring.params().is_feature_rw_cur_pos()
            && FS_OPCODES.iter().all(|c| probe.is_supported(*c)),
        release,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(release_at_least("6.1.0-18-amd64", 5, 19));
        assert!(release_at_least("5.19.0", 5, 19));
        assert!(!release_at_least("5.15.0-91-generic", 5, 19));
        assert!(!release_at_least("4.19", 5, 1));
        assert!(!release_at_least("", 5, 19));
        assert!(!release_at_least("unknown", 0, 0));
    }

    #[test]
    fn a_refused_setup_names_its_cause() {
        use ProbeError::*;
        assert_eq!(
            classify_setup_error(Some(libc::ENOSYS), None, false),
            NoSyscall
        );
        assert_eq!(
            classify_setup_error(Some(libc::EPERM), Some("2"), true),
            DisabledBySysctl
        );
        assert_eq!(
            classify_setup_error(Some(libc::EPERM), Some("1"), false),
            NotInGroup
        );
        // io_uring_disabled = 0: the refusal came from elsewhere.
        assert_eq!(
            classify_setup_error(Some(libc::EPERM), Some("0"), true),
            Seccomp
        );
        assert_eq!(
            classify_setup_error(Some(libc::EPERM), None, false),
            Refused { errno: libc::EPERM }
        );
        assert_eq!(
            classify_setup_error(Some(libc::EACCES), Some("0"), false),
            Refused {
                errno: libc::EACCES
            }
        );
        assert_eq!(
            classify_setup_error(Some(libc::ENOMEM), None, false),
            LockedMemory
        );
        assert_eq!(
            classify_setup_error(Some(libc::EINVAL), None, false),
            Setup {
                errno: Some(libc::EINVAL)
            }
        );
    }

    #[test]
    fn probe_errors_read_as_the_reports_print_them() {
        assert_eq!(
            ProbeError::Refused { errno: libc::EPERM }.to_string(),
            "io_uring_setup was refused (EPERM), by a seccomp filter or a security module"
        );
        assert_eq!(
            ProbeError::Refused {
                errno: libc::EACCES
            }
            .to_string(),
            "io_uring_setup was refused (EACCES) by a security module"
        );
        assert_eq!(
            ProbeError::MissingOpcodes {
                missing: vec!["SENDMSG", "SHUTDOWN"]
            }
            .to_string(),
            "this kernel's io_uring lacks IORING_OP_SENDMSG, IORING_OP_SHUTDOWN"
        );
        let setup = ProbeError::Setup {
            errno: Some(libc::EINVAL),
        }
        .to_string();
        assert_eq!(
            setup,
            format!(
                "io_uring_setup failed: {}",
                io::Error::from_raw_os_error(libc::EINVAL)
            )
        );
    }

    #[test]
    fn the_probe_agrees_with_a_ring_set_up_here() {
        if !crate::testing::uring() {
            return;
        }
        let caps = probe().expect("io_uring runs here");
        let ring = IoUring::new(8).expect("a ring, as the probe found");
        assert_eq!(caps.ext_arg, ring.params().is_feature_ext_arg());
        assert_eq!(caps.release, kernel_release());
        assert!(!caps.release.is_empty());
        assert_eq!(
            caps.multishot_accept,
            release_at_least(&caps.release, 5, 19)
        );
        // Every required opcode is there: the probe said so.
        let mut p = Probe::new();
        ring.submitter().register_probe(&mut p).unwrap();
        for (code, name) in REQUIRED {
            assert!(p.is_supported(*code), "IORING_OP_{name}");
        }
        // Once per process: the same answer again.
        assert_eq!(probe().unwrap().release, caps.release);
    }

    #[test]
    fn the_probe_fails_when_io_uring_setup_is_refused() {
        // In a child process: a seccomp filter cannot be removed.
        const CHILD: &str = "SPRINT_IO_PROBE_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            crate::testing::deny_io_uring_setup();
            let err = probe_now().expect_err("io_uring_setup is denied");
            println!("PROBE {err:?}");
            return;
        }
        if !crate::testing::uring() {
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "driver::uring::probe::tests::the_probe_fails_when_io_uring_setup_is_refused",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("PROBE Seccomp"), "{stdout}");
    }
}
