//! Declared skips for Sprint's own tests (not for users).
//!
//! A test that needs something a machine may lack (io_uring, root) skips
//! where it is missing, printing `skipped: <reason>`. Where the
//! environment variable `SPRINT_REQUIRE` (a comma-separated list, e.g.
//! `uring,root`) names that need, the skip fails the test instead, so a
//! CI machine that cannot run the riskiest code does not pass silently.

use std::fmt::Display;

/// The environment variable that lists what must not be skipped.
pub const REQUIRE_VAR: &str = "SPRINT_REQUIRE";

/// Whether `SPRINT_REQUIRE` names `what` (`uring`, `root`, ...).
pub fn require(what: &str) -> bool {
    names(std::env::var(REQUIRE_VAR).ok().as_deref(), what)
}

/// Whether comma-separated `list` names `what`.
fn names(list: Option<&str>, what: &str) -> bool {
    list.is_some_and(|l| l.split(',').any(|w| w.trim() == what))
}

/// Skips a test that needs `what`, for `reason`: prints
/// `skipped: <reason>` and returns, or panics if `SPRINT_REQUIRE` names
/// `what`.
#[track_caller]
pub fn skip(what: &str, reason: impl Display) {
    if require(what) {
        panic!("{REQUIRE_VAR} names `{what}`, but this test cannot run it here: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// Whether io_uring can run here. Where it cannot, the caller skips:
/// this prints why, or panics if `SPRINT_REQUIRE` names `uring`.
#[track_caller]
pub fn uring() -> bool {
    match crate::driver::uring_available() {
        Ok(()) => true,
        Err(why) => {
            skip("uring", format_args!("io_uring cannot run here: {why}"));
            false
        }
    }
}

/// Makes `io_uring_setup` fail with EPERM on the calling thread (and the
/// threads it starts), as a container's seccomp profile does. For child
/// processes of tests only: a filter cannot be removed.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn deny_io_uring_setup() {
    let mut filter = seccomp_deny_io_uring_setup();
    // SAFETY: prctl with plain integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(r, 0, "no_new_privs: {}", std::io::Error::last_os_error());
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at a valid classic-BPF program that lives for
    // the call (the kernel copies it).
    let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) };
    assert_eq!(
        r,
        0,
        "install the filter: {}",
        std::io::Error::last_os_error()
    );
}

/// A classic-BPF seccomp program: `io_uring_setup` (this architecture's
/// number) fails with EPERM, every other system call is allowed.
#[cfg(all(test, target_os = "linux"))]
fn seccomp_deny_io_uring_setup() -> Vec<libc::sock_filter> {
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let nr = libc::SYS_io_uring_setup as u32;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    vec![
        // A = seccomp_data.nr (offset 0)
        stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
        jeq(nr, 0, 1),
        stmt(libc::BPF_RET as u16, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(libc::BPF_RET as u16, SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::names;

    #[test]
    fn the_require_list_is_comma_separated_and_matches_whole_names() {
        assert!(names(Some("uring"), "uring"));
        assert!(names(Some("root, uring"), "uring"));
        assert!(names(Some("uring,root"), "root"));
        assert!(!names(Some("uring_sqpoll"), "uring"));
        assert!(!names(Some(""), "uring"));
        assert!(!names(None, "uring"));
    }

    /// Where io_uring cannot run, `uring()` skips, or fails the test when
    /// SPRINT_REQUIRE names `uring`. In a child process: the seccomp
    /// filter that makes io_uring fail cannot be removed.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_required_io_uring_that_cannot_run_fails_the_test() {
        const CHILD: &str = "SPRINT_IO_TESTING_CHILD";
        if std::env::var_os(CHILD).is_some() {
            super::deny_io_uring_setup();
            let ran = super::uring();
            println!("RAN {ran}");
            return;
        }
        if !super::uring() {
            return;
        }
        let child = |require: &str| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "testing::tests::a_required_io_uring_that_cannot_run_fails_the_test",
                    "--exact",
                    "--nocapture",
                ])
                .env(CHILD, "1")
                .env(super::REQUIRE_VAR, require)
                .output()
                .unwrap()
        };
        let skipped = child("root");
        let (out, err) = (
            String::from_utf8_lossy(&skipped.stdout),
            String::from_utf8_lossy(&skipped.stderr),
        );
        assert!(skipped.status.success(), "{out}\n{err}");
        assert!(out.contains("RAN false"), "{out}");
        assert!(
            err.contains("skipped: io_uring cannot run here: io_uring_setup was refused (EPERM)"),
            "{err}"
        );
        let failed = child("root,uring");
        let (out, err) = (
            String::from_utf8_lossy(&failed.stdout),
            String::from_utf8_lossy(&failed.stderr),
        );
        assert!(!failed.status.success(), "{out}\n{err}");
        assert!(!out.contains("RAN"), "{out}");
        assert!(
            err.contains("SPRINT_REQUIRE names `uring`, but this test cannot run it here: io_uring cannot run here"),
            "{err}"
        );
    }
}
