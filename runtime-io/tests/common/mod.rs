//! The shared test helpers (sprint-testkit), and the declared io_uring
//! skip of these suites.
#![allow(dead_code, unused_imports)]

pub use sprint_testkit::*;

/// Whether io_uring can run here. Where it cannot, the caller skips: this
/// prints why, or fails the test if `SPRINT_REQUIRE` names `uring`.
#[track_caller]
pub fn uring() -> bool {
    match sprint_io::driver::uring_available() {
        Ok(()) => true,
        Err(why) => {
            skip("uring", format_args!("io_uring cannot run here: {why}"));
            false
        }
    }
}
