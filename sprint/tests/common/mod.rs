//! The shared test helpers (sprint-testkit).
#![allow(unused_imports)]

pub use sprint_testkit::*;
