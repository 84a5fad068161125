//! Why io_uring cannot run here: the start-up probe's answer, as a type.
//!
//! Each variant names one cause an operator can act on (a kernel too old,
//! a sysctl, a seccomp profile, a memory limit), with the errno the kernel
//! gave where there is one. Its text is what the start-up report and the
//! fallback warning print.

use std::fmt;

/// Why io_uring cannot run on this machine, as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// io_uring is a Linux interface.
    #[error("io_uring is a Linux interface: not available on this platform")]
    NotLinux,
    /// The kernel has no io_uring system calls (older than 5.1, or built
    /// without `CONFIG_IO_URING`): `io_uring_setup` gave ENOSYS.
    #[error("the kernel has no io_uring (ENOSYS)")]
    NoSyscall,
    /// `kernel.io_uring_disabled = 2`: io_uring is off for every process.
    #[error("io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 2")]
    DisabledBySysctl,
    /// `kernel.io_uring_disabled = 1`, and this process is neither
    /// privileged nor in `kernel.io_uring_group`.
    #[error("io_uring_setup was refused (EPERM): kernel.io_uring_disabled = 1 and this process is not in kernel.io_uring_group")]
    NotInGroup,
    /// Refused (EPERM) while the probing thread runs under a seccomp
    /// filter, as container runtimes' default profiles install.
    #[error("io_uring_setup was refused (EPERM), by a seccomp filter on this process")]
    Seccomp,
    /// Refused with `errno` (EPERM, EACCES) by a security policy: a
    /// seccomp filter this process cannot see or a security module.
    #[error("io_uring_setup was refused ({}){}", Errno(*errno), refused_by(*errno))]
    Refused {
        /// The errno `io_uring_setup` returned.
        errno: i32,
    },
    /// ENOMEM: the locked-memory limit (`RLIMIT_MEMLOCK`, which older
    /// kernels charge rings to) is too low for a ring.
    #[error("io_uring_setup failed (ENOMEM): locked-memory limit too low for the ring")]
    LockedMemory,
    /// `io_uring_setup` (or mapping the ring) failed otherwise.
    #[error("io_uring_setup failed: {}", OsError(*errno))]
    Setup {
        /// The errno, if the failure had one.
        errno: Option<i32>,
    },
    /// `IORING_REGISTER_PROBE` failed: a kernel older than 5.6, which
    /// cannot list its opcodes.
    #[error("io_uring cannot list its opcodes (IORING_REGISTER_PROBE): {}", OsError(*errno))]
    NoOpcodeList {
        /// The errno the registration returned, if it had one.
        errno: Option<i32>,
    },
    /// The kernel's io_uring lacks opcodes the driver uses (their
    /// `IORING_OP_` names without the prefix, e.g. `SENDMSG`).
    #[error("this kernel's io_uring lacks IORING_OP_{}", .missing.join(", IORING_OP_"))]
    MissingOpcodes {
        /// The missing opcodes.
        missing: Vec<&'static str>,
    },
}

/// An errno as the system describes it ("Invalid argument (os error 22)").
struct OsError(Option<i32>);

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => std::io::Error::from_raw_os_error(e).fmt(f),
            None => f.write_str("an error without an errno"),
        }
    }
}

/// An errno by its symbolic name where the probe knows it.
struct Errno(i32);

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(unix)]
        match self.0 {
            libc::EPERM => return f.write_str("EPERM"),
            libc::EACCES => return f.write_str("EACCES"),
            _ => {}
        }
        write!(f, "errno {}", self.0)
    }
}

fn refused_by(errno: i32) -> &'static str {
    #[cfg(unix)]
    if errno == libc::EPERM {
        return ", by a seccomp filter or a security module";
    }
    let _ = errno;
    " by a security module"
}
