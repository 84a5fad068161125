//! `sprint_io::process` on every driver the machine offers, with a pidfd
//! and (in a child process whose seccomp filter refuses `pidfd_open`)
//! without one.

mod common;

use common::{drivers, rt};

use sprint_core::config::IoDriver;
use sprint_core::{spawn, time};
use sprint_io::process::{Command, Stdio};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

const CHILD: &str = "NO_PIDFD_CHILD_OF_THE_SPRINT_IO_TESTS";

/// The cases every driver runs, with a pidfd or without (`pidfd`: which
/// one is expected).
async fn cases(d: IoDriver, pidfd: bool) {
    // Exit codes.
    let mut c = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    assert_eq!(c.uses_pidfd(), pidfd, "{d}");
    let st = c.wait().await.unwrap();
    assert_eq!(st.code(), Some(7), "{d}");
    assert_eq!(c.try_wait().unwrap(), Some(st), "{d}: the status stays");
    assert!(Command::new("true").status().await.unwrap().success());

    // Output capture, both pipes, more than a pipe holds.
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; head -c 300000 /dev/zero"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{d}: {:?}", out.status);
    assert_eq!(&out.stdout[..4], b"out\n", "{d}");
    assert_eq!(out.stdout.len(), 4 + 300_000, "{d}");
    assert_eq!(out.stderr, b"err\n", "{d}");

    // A child killed: the wait ends and reports the signal.
    let mut c = Command::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(c.try_wait().unwrap(), None, "{d}: still running");
    c.kill().unwrap();
    let st = time::timeout(Duration::from_secs(10), c.wait())
        .await
        .expect("the wait ends once the child is killed")
        .unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{d}: {st:?}");

    // stdin piped through cat, written while its output is read.
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = cat.stdin.take().unwrap();
    let msg: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
    let sent = msg.clone();
    let writer = spawn(async move {
        stdin.write_all(&sent).await.unwrap();
        // Dropped here: cat reads end-of-file.
    });
    let out = cat.wait_with_output().await.unwrap();
    writer.await.unwrap();
    assert!(out.status.success(), "{d}");
    assert_eq!(out.stdout, msg, "{d}");

    // A program that does not exist: spawn's error.
    let e = Command::new("/no/such/program").spawn().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{d}");
}

#[test]
fn children_exit_print_die_and_read_stdin() {
    for d in drivers() {
        rt(d).block_on(cases(d, true));
    }
}

/// Refuses `pidfd_open` (ENOSYS, as a kernel before 5.3 answers) for this
/// thread and the threads it starts.
fn deny_pidfd_open() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .expect("a seccompiler architecture");
    let filter = SeccompFilter::new(
        [(libc::SYS_pidfd_open, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .expect("filter");
    let prog: BpfProgram = filter.try_into().expect("bpf");
    seccompiler::apply_filter(&prog).expect("install the seccomp filter");
}

/// Without pidfds a blocking-pool job waits for the exit; the cases run
/// the same. The filter cannot be removed, hence the child process.
#[test]
fn without_pidfds_the_blocking_pool_waits() {
    if let Ok(case) = std::env::var(CHILD) {
        deny_pidfd_open();
        let d = if case == "uring" {
            IoDriver::Uring
        } else {
            IoDriver::Epoll
        };
        rt(d).block_on(cases(d, false));
        println!("NO_PIDFD_DONE {case}");
        return;
    }
    for d in drivers() {
        let case = if d == IoDriver::Uring {
            "uring"
        } else {
            "epoll"
        };
        let out = common::run_child("without_pidfds_the_blocking_pool_waits", CHILD, case);
        assert_eq!(common::tagged(&out, "NO_PIDFD_DONE "), case);
    }
}
