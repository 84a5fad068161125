//! `#[sprint::main]` end to end, in child processes: signals become a
//! graceful shutdown, and `config = "…"` is read from the working directory.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn graceful_exit_on(signal: i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_graceful"))
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready"), "{line}");
    // SAFETY: kill sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the child did not exit");
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
    assert_eq!(status.code(), Some(128 + signal), "stderr: {err}");
    for w in 0..2 {
        let want = format!("connection {w} closed on sprint-worker-");
        assert!(rest.contains(&want), "{want:?} in {rest:?}");
    }
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(
        err.contains(&format!("sprint: {name} received, shutting down")),
        "{err}"
    );
}

#[test]
fn sigterm_shuts_down_gracefully_and_runs_every_drop() {
    graceful_exit_on(libc::SIGTERM);
}

#[test]
fn sigint_shuts_down_gracefully_and_runs_every_drop() {
    graceful_exit_on(libc::SIGINT);
}

#[test]
fn config_file_is_read_relative_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sprint.toml"),
        "workers = 1\ncoop_budget = 12\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custom_config"))
        .current_dir(dir.path())
        .env_clear()
        .env("SPRINT_COOP_BUDGET", "13")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("workers: 1\n"), "{stdout}");
    assert!(stdout.contains("level: aggressive (code)"), "{stdout}");
    assert!(
        stdout.contains("coop_budget: 13 (environment SPRINT_COOP_BUDGET)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("workers: Some(1) (file sprint.toml)"),
        "{stdout}"
    );
}

/// Runs `custom_config` in `dir` with no environment; it must fail to
/// start with status 2 and a message containing `want`.
fn start_fails_with(dir: &std::path::Path, want: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_custom_config"))
        .current_dir(dir)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(want), "{want:?} in {err}");
}

#[test]
fn a_missing_or_bad_config_file_exits_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    start_fails_with(
        dir.path(),
        "sprint: cannot start the runtime: cannot read the config file sprint.toml",
    );
    std::fs::write(dir.path().join("sprint.toml"), "workers = 0\n").unwrap();
    start_fails_with(
        dir.path(),
        "invalid value for `workers`: 0: a runtime needs at least one worker",
    );
}
