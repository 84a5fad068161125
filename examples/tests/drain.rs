//! The draining phase of `#[sprint::main]`, in child processes sent real
//! signals: a program that watches `sprint::shutdown` finishes its work
//! and exits 0; one that overruns the drain deadline is cancelled and
//! exits with 128 + the signal; a second signal exits at once.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn start(work_ms: u64, drain_ms: Option<u64>) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drain"));
    cmd.env_clear()
        .env("DRAIN_WORK_MS", work_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ms) = drain_ms {
        cmd.env("SPRINT_DRAIN_TIMEOUT_MS", ms.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    (child, out)
}

fn kill(child: &Child, sig: i32) {
    // SAFETY: kill sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits (at most `within`) for the child to exit: its status, the rest
/// of its stdout, its stderr.
fn finish(
    mut child: Child,
    mut out: BufReader<ChildStdout>,
    within: Duration,
) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the child did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), rest, err)
}

#[test]
fn sigterm_drains_and_main_returns_with_status_0() {
    let (child, out) = start(100, None);
    kill(&child, libc::SIGTERM);
    let (code, out, err) = finish(child, out, Duration::from_secs(20));
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    for w in 0..2 {
        assert!(out.contains(&format!("worker {w} drained")), "{out}");
    }
    assert!(out.contains("main returns"), "{out}");
    assert!(err.contains("sprint: SIGTERM received, draining"), "{err}");
    assert!(
        !err.contains("shutting down"),
        "nothing was cancelled: {err}"
    );
}

#[test]
fn past_the_drain_deadline_every_task_is_cancelled() {
    let (child, out) = start(60_000, Some(200));
    kill(&child, libc::SIGINT);
    let (code, out, err) = finish(child, out, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(128 + libc::SIGINT),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(!out.contains("main returns"), "{out}");
    assert!(err.contains("the drain deadline passed"), "{err}");
    assert!(
        err.contains("sprint: SIGINT received, shutting down"),
        "{err}"
    );
}

#[test]
fn a_second_signal_while_draining_exits_at_once() {
    let (child, mut out) = start(60_000, Some(60_000));
    kill(&child, libc::SIGTERM);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("draining"), "{line}");
    kill(&child, libc::SIGINT);
    // Well before either minute-long deadline.
    let (code, out, err) = finish(child, out, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(128 + libc::SIGINT),
        "stdout: {out}\nstderr: {err}"
    );
    assert!(!out.contains("main returns"), "{out}");
}
