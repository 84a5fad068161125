//! What Sprint's test suites share (a dev-dependency only): waits on a
//! condition instead of sleeps that hope something has happened, the
//! skips a test declares (`SPRINT_REQUIRE` turns them into failures), and
//! child processes for tests that change process-wide settings.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::time::{Duration, Instant};

/// Runs this binary's test `name` alone in a child process with
/// `env_key=case` set (process-wide settings changed there never reach this
/// process); its stdout, after checking that it succeeded.
pub fn run_child(name: &str, env_key: &str, case: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env_key, case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {name} {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// What follows `tag` on the first line of `out` that has it.
pub fn tagged<'a>(out: &'a str, tag: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.split_once(tag).map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no {tag} in {out}"))
}

/// Polls `cond` until it holds; fails the test naming `what` if it does not
/// within `within`.
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// [`wait_until`] inside the runtime: polls on the runtime's timer, so the
/// awaiting task leaves its thread to others between looks.
pub async fn wait_until_async(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        sprint_core::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether `SPRINT_REQUIRE` (comma-separated names: `root`, `uring`,
/// `hugepages`, ...) names `need`.
pub fn required(need: &str) -> bool {
    names(std::env::var("SPRINT_REQUIRE").ok().as_deref(), need)
}

/// Whether the comma-separated `list` names `need`, whole.
fn names(list: Option<&str>, need: &str) -> bool {
    list.is_some_and(|l| l.split(',').any(|n| n.trim() == need))
}

/// A declared skip: `need` is missing on this machine, because `why`. The
/// test prints that it skipped and the caller returns; but when
/// `SPRINT_REQUIRE` names `need` (a CI that promised it), the test fails
/// here instead, naming what was missing.
pub fn skip(need: &str, why: impl std::fmt::Display) {
    assert!(
        !required(need),
        "SPRINT_REQUIRE names {need:?}, but it is missing here: {why}"
    );
    eprintln!("skipped (needs {need}; SPRINT_REQUIRE={need} makes this fail): {why}");
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
}
