//! The unit tests' declared io_uring skip (sprint-testkit's `skip`, which
//! `SPRINT_REQUIRE=uring` turns into a failure), and a seccomp filter
//! that makes io_uring unavailable in a child process.

/// Whether io_uring can run here. Where it cannot, the caller skips:
/// this prints why, or panics if `SPRINT_REQUIRE` names `uring`.
#[track_caller]
pub fn uring() -> bool {
    match crate::driver::uring_available() {
        Ok(()) => true,
        Err(why) => {
            sprint_testkit::skip("uring", format_args!("io_uring cannot run here: {why}"));
            false
        }
    }
}

/// Makes `io_uring_setup` fail with EPERM on the calling thread (and the
/// threads it starts), as a container's seccomp profile does. For child
/// processes of tests only: a filter cannot be removed.
#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
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
                .env("SPRINT_REQUIRE", require)
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
            err.contains("io_uring cannot run here: io_uring_setup was refused (EPERM)"),
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
            err.contains(
                "SPRINT_REQUIRE names \"uring\", but it is missing here: io_uring cannot run here"
            ),
            "{err}"
        );
    }
}
