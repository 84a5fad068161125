//! OS tuning with real settings, always put back. Every case that changes
//! a process-wide setting runs in a child process of its own, so cases
//! never share state, and a failing case cannot leave this process
//! changed.

use proptest::prelude::*;
use sprint::config::{IdleStrategy, LockMemory, RtPolicy};
use sprint::{Builder, Config, Level};
use sprint_os::tune::{apply_with_fallback, Outcome, Snapshot, Tuner};

mod common;

const CHILD: &str = "TUNE_CHILD_OF_THE_SPRINT_CORE_TESTS";

fn child(name: &str, case: &str) -> String {
    common::run_child(name, CHILD, case)
}

use common::tagged;

fn config_from(case: &str) -> Config {
    let f: Vec<&str> = case.split(',').collect();
    let mut c = Config::for_level(f[0].parse().unwrap());
    c.rt_policy = f[1].parse().unwrap();
    c.rt_priority = f[2].parse().unwrap();
    c.nice = f[3].parse().unwrap();
    c.timer_slack_ns = match f[4] {
        "none" => None,
        n => Some(n.parse().unwrap()),
    };
    c.lock_memory = f[5].parse().unwrap();
    c.huge_pages = f[6].parse().unwrap();
    c
}

/// In the child: snapshot, apply, snapshot, restore, snapshot.
fn restore_child(case: &str) {
    let cfg = config_from(case);
    let before = Snapshot::take();
    let guard = Tuner::new(cfg).apply().unwrap();
    let during = Snapshot::take();
    let applied = guard
        .report
        .iter()
        .filter(|l| matches!(l.outcome, Outcome::Applied { .. }))
        .count();
    guard.restore();
    let after = Snapshot::take();
    println!("APPLIED {applied}");
    println!("CHANGED {}", before != during);
    println!("BEFORE {before:?}");
    println!("AFTER {after:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

    /// Whatever the configuration, restore brings back every setting.
    #[test]
    fn restore_puts_every_setting_back(
        level in prop::sample::select(vec!["basic", "standard", "aggressive", "enterprise", "turbo"]),
        rt in prop::sample::select(vec!["none", "fifo", "rr"]),
        prio in 1u8..=99,
        nice in -20i8..=19,
        slack in prop::option::of(1u64..1_000_000),
        lock in prop::sample::select(vec!["none", "arenas", "all"]),
        huge in any::<bool>(),
    ) {
        if std::env::var_os(CHILD).is_some() {
            return Ok(());
        }
        let slack = slack.map_or("none".to_string(), |s| s.to_string());
        let case = format!("{level},{rt},{prio},{nice},{slack},{lock},{huge}");
        let out = child("restore_child_entry", &case);
        prop_assert_eq!(tagged(&out, "BEFORE "), tagged(&out, "AFTER "), "case {}", case);
        let applied: usize = tagged(&out, "APPLIED ").trim().parse().unwrap();
        if applied > 0 {
            prop_assert_eq!(tagged(&out, "CHANGED ").trim(), "true", "case {}", case);
        }
    }
}

#[test]
#[ignore = "the child process of restore_puts_every_setting_back"]
fn restore_child_entry() {
    if let Ok(case) = std::env::var(CHILD) {
        restore_child(&case);
    }
}

/// In the child: CAP_SYS_NICE dropped for real.
fn no_nice_child() {
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        caps::drop(None, set, caps::Capability::CAP_SYS_NICE).unwrap();
    }
    let before = Snapshot::take();
    let mut cfg = Config::for_level(Level::Enterprise);
    let guard = Tuner::new(cfg.clone()).apply().unwrap();
    for l in &guard.report {
        println!("LINE {l}");
    }
    drop(guard);
    cfg.strict = true;
    let err = Tuner::new(cfg).apply().unwrap_err();
    println!("STRICT {err}");
    println!("UNCHANGED {}", Snapshot::take() == before);
    let g = apply_with_fallback(&[Level::Turbo, Level::Enterprise, Level::Basic]).unwrap();
    println!("FALLBACK {}", g.level);
}

#[test]
fn without_cap_sys_nice_the_real_time_class_is_skipped_with_a_reason() {
    if std::env::var(CHILD).as_deref() == Ok("no-nice") {
        return no_nice_child();
    }
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let out = child(
        "without_cap_sys_nice_the_real_time_class_is_skipped_with_a_reason",
        "no-nice",
    );
    assert!(
        out.contains("scheduling class: skipped: Operation not permitted (os error 1): changing the scheduling class needs CAP_SYS_NICE"),
        "{out}"
    );
    let strict = tagged(&out, "STRICT ");
    assert!(
        strict.contains("scheduling class") && strict.contains("nothing was left changed"),
        "{strict}"
    );
    assert_eq!(
        tagged(&out, "UNCHANGED ").trim(),
        "true",
        "strict left nothing half-applied"
    );
    // Turbo and Enterprise need the real-time class strictly; Basic wins.
    assert_eq!(tagged(&out, "FALLBACK ").trim(), "basic");
}

fn sched_of(tid: i32) -> (i32, i32) {
    // SAFETY: queries about another thread with a valid out-pointer.
    unsafe {
        let p = libc::sched_getscheduler(tid);
        let mut sp = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(tid, &mut sp);
        (p, sp.sched_priority)
    }
}

/// In the child: an Enterprise runtime's worker runs SCHED_FIFO 50 with a
/// 1 µs timer slack and a second runtime shares the process settings. The
/// worker parks at once (a spinning one stays SCHED_OTHER while RT
/// throttling is on: see the RT safety case).
fn runtime_child() {
    let before = Snapshot::take();
    let rt = Builder::new()
        .level(Level::Enterprise)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            c.huge_pages = true;
            c.idle = IdleStrategy::Park;
        })
        .build()
        .unwrap();
    let tid = rt.handle().worker_thread_ids()[0];
    println!("WORKER {:?}", sched_of(tid));
    for l in rt.start_report().tuning() {
        println!("LINE {l}");
    }
    // A real-time worker must not be switched to spinning while RT
    // throttling is on.
    match rt.handle().set_idle(
        IdleStrategy::SpinThenPark,
        std::time::Duration::from_millis(1),
    ) {
        Ok(()) => println!("SETIDLE ok"),
        Err(e) => println!("SETIDLE refused: {e}"),
    }
    let second = Builder::new()
        .level(Level::Enterprise)
        .read_env(false)
        .workers(1)
        .build()
        .unwrap();
    for l in second.start_report().tuning() {
        println!("SECOND {l}");
    }
    drop(rt);
    println!(
        "SHARED {}",
        Snapshot::take().thp_disabled == before.thp_disabled
    );
    drop(second);
    println!("RESTORED {}", Snapshot::take() == before);
}

#[test]
fn a_runtime_tunes_its_workers_and_shares_process_settings() {
    if std::env::var(CHILD).as_deref() == Ok("runtime") {
        return runtime_child();
    }
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let out = child(
        "a_runtime_tunes_its_workers_and_shares_process_settings",
        "runtime",
    );
    assert_eq!(
        tagged(&out, "WORKER ").trim(),
        format!("({}, 50)", libc::SCHED_FIFO)
    );
    assert!(
        out.contains("sprint-worker-0 scheduling class: applied (SCHED_OTHER -> SCHED_FIFO 50)"),
        "{out}"
    );
    assert!(
        out.contains("sprint-worker-0 timer slack ns: applied"),
        "{out}"
    );
    assert!(
        out.contains("SECOND process process settings: unchanged (owned by the first runtime"),
        "{out}"
    );
    assert_eq!(tagged(&out, "RESTORED ").trim(), "true", "{out}");
    let throttled = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us")
        .map(|s| s.trim() != "-1")
        .unwrap_or(true);
    if throttled {
        assert!(
            tagged(&out, "SETIDLE ")
                .starts_with("refused: worker 0 runs real-time and must not spin"),
            "{out}"
        );
    }
}

/// RT safety: with kernel RT throttling on (it always stays on), a Turbo
/// worker busy-polls at SCHED_OTHER and its nice value, not SCHED_FIFO (a
/// real-time busy-poller would be stopped for the rest of every period;
/// measured in the relay benchmark), and says why; a normal thread pinned
/// to the same CPU still runs; with as many workers as CPUs, the last is
/// kept SCHED_OTHER for that reason.
fn rt_safety_child() {
    let allowed = sprint_os::allowed_cpus().unwrap();
    let cpu = *allowed.last().unwrap();
    let spin = |pin: usize, ms: u64| {
        std::thread::spawn(move || {
            core_affinity_set(pin);
            let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            let mut n = 0u64;
            while std::time::Instant::now() < end {
                n += 1;
                std::hint::black_box(n);
            }
            n
        })
    };
    let alone = spin(cpu, 300).join().unwrap();
    let rt = Builder::new()
        .level(Level::Turbo)
        .read_env(false)
        .workers(1)
        .cpus(vec![cpu])
        .configure(|c| {
            c.lock_memory = LockMemory::None;
            c.huge_pages = false;
            c.uring_sqpoll = false;
        })
        .build()
        .unwrap();
    assert_eq!(rt.config().idle, IdleStrategy::BusyPoll);
    let tid = rt.handle().worker_thread_ids()[0];
    println!("WORKER {:?}", sched_of(tid));
    let beside = spin(cpu, 1000).join().unwrap();
    drop(rt);
    println!(
        "PROGRESS {:.4}",
        beside as f64 / (alone as f64 * 1000.0 / 300.0)
    );
    if allowed.len() >= 2 {
        let rt = Builder::new()
            .level(Level::Turbo)
            .read_env(false)
            .workers(allowed.len())
            .configure(|c| {
                c.lock_memory = LockMemory::None;
                c.huge_pages = false;
                c.uring_sqpoll = false;
                c.rt_policy = RtPolicy::Fifo;
            })
            .build()
            .unwrap();
        for l in rt.start_report().tuning() {
            println!("ALLCPUS {l}");
        }
    }
}

fn core_affinity_set(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one CPU set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[test]
fn a_real_time_busy_poller_leaves_its_cpu_usable_and_never_takes_all() {
    if std::env::var(CHILD).as_deref() == Ok("rt") {
        return rt_safety_child();
    }
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let out = child(
        "a_real_time_busy_poller_leaves_its_cpu_usable_and_never_takes_all",
        "rt",
    );
    let throttled = std::fs::read_to_string("/proc/sys/kernel/sched_rt_runtime_us")
        .map(|s| s.trim() != "-1")
        .unwrap_or(true);
    if throttled {
        assert_eq!(
            tagged(&out, "WORKER ").trim(),
            format!("({}, 0)", libc::SCHED_OTHER),
            "{out}"
        );
        assert!(
            out.contains("sprint-worker-0 scheduling class: unchanged (SCHED_OTHER, spinning at nice -15 (the level's choice: kernel RT throttling"),
            "{out}"
        );
        assert!(out.contains("sprint-worker-0 nice: applied"), "{out}");
    } else {
        assert_eq!(
            tagged(&out, "WORKER ").trim(),
            format!("({}, 80)", libc::SCHED_FIFO)
        );
    }
    let progress: f64 = tagged(&out, "PROGRESS ").trim().parse().unwrap();
    eprintln!(
        "a normal thread beside a Turbo busy-poller ran at {:.1} % of its solo speed",
        progress * 100.0
    );
    assert!(progress > 0.01, "starved: {progress}");
    if out.contains("ALLCPUS") {
        assert!(
            out.contains("scheduling class: skipped: left SCHED_OTHER: real-time busy-polling on every allowed CPU"),
            "{out}"
        );
    }
}

#[test]
fn bad_tuning_input_is_refused_by_name() {
    let mut c = Config::for_level(Level::Enterprise);
    c.rt_priority = 0;
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("rt_priority"));
    let mut c = Config::for_level(Level::Standard);
    c.nice = 25;
    assert!(c.validate().unwrap_err().to_string().contains("nice"));
    assert!("ludicrous".parse::<Level>().is_err());
}
