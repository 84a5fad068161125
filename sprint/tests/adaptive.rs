//! The adaptive controller on a real runtime: a load step moves the level
//! up within a few windows and back down after it, and no more; it never
//! leaves the operator's range; a level whose privilege is missing
//! (CAP_SYS_NICE dropped for real, in a child process) is reported
//! unavailable. The objective is a named histogram the test fills, so the
//! load step is exact.

mod common;

use common::{run_child, tagged};
use sprint::config::{IdleStrategy, Scheduling};
use sprint::{Builder, Level, Runtime};
use std::time::{Duration, Instant};

const CHILD: &str = "SPRINT_ADAPTIVE_TEST_CHILD";

fn adaptive_rt(objective: &str, max: Level) -> Runtime {
    let objective = objective.to_string();
    Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(1)
        .configure(move |c| {
            c.adaptive = true;
            c.adaptive_objective = objective;
            c.adaptive_min_level = Level::Basic;
            c.adaptive_max_level = max;
            c.adaptive_window_ms = 50;
            c.adaptive_up_after = 3;
            c.adaptive_down_after = 10;
            c.adaptive_dwell_ms = 200;
        })
        .build()
        .expect("an adaptive runtime")
}

/// Waits (up to 10 s) until the runtime is at `level`.
fn wait_level(rt: &Runtime, level: Level, during: impl Fn()) {
    let until = Instant::now() + Duration::from_secs(10);
    while rt.stats().level != level {
        assert!(
            Instant::now() < until,
            "never reached {level}: {:?}",
            rt.stats().transitions
        );
        during();
    }
}

#[test]
fn a_load_step_moves_the_level_up_and_back_down() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let rt = adaptive_rt("adaptive_step p99 < 1ms", Level::Aggressive);
    let h = sprint::metrics::histogram("adaptive_step", "the test's load").unwrap();
    let tid = rt.handle().worker_thread_ids()[0];
    let slack = || std::fs::read_to_string(format!("/proc/{tid}/timerslack_ns")).unwrap();
    let slack_before = slack();
    // Idle: nothing recorded, the lowest level holds. Not a wait for an
    // event: six windows in which the controller would move if it wrongly
    // did.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rt.stats().level, Level::Basic);
    assert_eq!(rt.stats().level_transitions, 0);
    // The burst: every sample misses the objective (the pause paces the
    // load over the controller's windows).
    let burst = || {
        for _ in 0..5 {
            h.record(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    wait_level(&rt, Level::Aggressive, burst);
    // The live settings of Aggressive are in force.
    assert_eq!(
        rt.handle().idle(),
        (IdleStrategy::SpinThenPark, Duration::from_micros(200))
    );
    assert_eq!(slack().trim(), "50000", "Aggressive's 50 µs timer slack");
    assert_eq!(
        rt.handle().scheduling(),
        Scheduling::StealWhenIdle,
        "Aggressive steals only when idle"
    );
    // It stays at the top of the range however long the burst lasts.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        burst();
    }
    assert_eq!(rt.stats().level, Level::Aggressive);
    // After the burst it comes down, one level at a time.
    wait_level(&rt, Level::Basic, || {
        std::thread::sleep(Duration::from_millis(10))
    });
    let s = rt.stats();
    let path: Vec<(Level, Level)> = s.transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        path,
        vec![
            (Level::Basic, Level::Standard),
            (Level::Standard, Level::Aggressive),
            (Level::Aggressive, Level::Standard),
            (Level::Standard, Level::Basic),
        ],
        "no more moves than the step explains: {:?}",
        s.transitions
    );
    assert_eq!(s.level_transitions, 4);
    assert!(
        s.transitions[0].reason.contains("adaptive_step missed"),
        "{:?}",
        s.transitions[0]
    );
    assert!(
        s.transitions[2].reason.contains("held"),
        "{:?}",
        s.transitions[2]
    );
    // Standard would need a restart for nothing here (the runtime started
    // with Aggressive's restart-only settings); Basic is Basic.
    assert_eq!(rt.handle().idle().0, IdleStrategy::Park);
    assert_eq!(rt.handle().scheduling(), Scheduling::WorkStealing);
    assert_eq!(
        slack(),
        slack_before,
        "Basic's slack is the worker's own again"
    );
}

#[test]
fn bad_adaptive_settings_are_refused_by_name() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let e = Builder::new()
        .read_env(false)
        .configure(|c| {
            c.adaptive = true;
            c.adaptive_objective = "schedule_delay p98 < 1ms".into();
        })
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("adaptive_objective") && e.contains("p98"), "{e}");
    let e = Builder::new()
        .read_env(false)
        .configure(|c| {
            c.adaptive = true;
            c.adaptive_min_level = Level::Turbo;
            c.adaptive_max_level = Level::Basic;
        })
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("adaptive_min_level"), "{e}");
}

/// In the child: without CAP_SYS_NICE, Aggressive's nice −5 cannot be set.
fn no_nice_child() {
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        caps::drop(None, set, caps::Capability::CAP_SYS_NICE).unwrap();
    }
    let rt = adaptive_rt("adaptive_nice p99 < 1ms", Level::Aggressive);
    let h = sprint::metrics::histogram("adaptive_nice", "the test's load").unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until && rt.stats().unavailable_levels.is_empty() {
        for _ in 0..5 {
            h.record(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let s = rt.stats();
    for (l, why) in &s.unavailable_levels {
        println!("UNAVAILABLE {l}: {why}");
    }
    println!("LEVEL {}", s.level);
}

#[test]
fn a_level_without_its_privilege_is_reported_unavailable() {
    if std::env::var(CHILD).as_deref() == Ok("no_nice") {
        return no_nice_child();
    }
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let out = run_child(
        "a_level_without_its_privilege_is_reported_unavailable",
        CHILD,
        "no_nice",
    );
    // Standard has no nice value to set, so it is reached; Aggressive is
    // not, and says why.
    assert!(
        tagged(&out, "UNAVAILABLE ").starts_with("aggressive: nice -5 for worker 0"),
        "{out}"
    );
    assert!(out.contains("CAP_SYS_NICE"), "{out}");
    assert_eq!(tagged(&out, "LEVEL ").trim(), "standard", "{out}");
}
