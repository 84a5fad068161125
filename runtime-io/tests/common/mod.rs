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

/// The drivers this machine offers: epoll, and io_uring where it can run
/// (a declared skip where it cannot; see [`uring`]).
pub fn drivers() -> Vec<sprint_core::config::IoDriver> {
    use sprint_core::config::IoDriver;
    if uring() {
        vec![IoDriver::Epoll, IoDriver::Uring]
    } else {
        vec![IoDriver::Epoll]
    }
}

/// One Standard worker on `driver`: no SQPOLL, no real-time class.
pub fn rt(driver: sprint_core::config::IoDriver) -> sprint::Runtime {
    sprint::Builder::new()
        .level(sprint_core::Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.io_driver = driver;
            c.uring_sqpoll = false;
            c.rt_policy = sprint_core::config::RtPolicy::None;
        })
        .build()
        .expect("runtime with a driver")
}
