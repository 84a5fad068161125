//! What the allocator's integration tests share: the skips a test declares.
#![allow(dead_code)]

/// Whether `SPRINT_REQUIRE` (comma-separated names: `root`, `hugepages`,
/// ...) names `need`.
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
