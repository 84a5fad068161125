//! What the facade's integration tests share: waits on a condition (never
//! a sleep that hopes something has happened) and the skips a test
//! declares.
#![allow(dead_code)]

use std::time::{Duration, Instant};

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
        sprint::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether `SPRINT_REQUIRE` (comma-separated names: `root`, `uring`,
/// `hugepages`, ...) names `need`.
pub fn required(need: &str) -> bool {
    std::env::var("SPRINT_REQUIRE").is_ok_and(|v| v.split(',').any(|n| n.trim() == need))
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
