//! Levels, presets, the file, the environment, precedence and validation.

use sprint_config::{Config, ConfigError, Level, Machine};
use sprint_config::{CpuList, IdleStrategy, Scheduling, Source};
use std::path::Path;

fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn level_display_and_from_str_round_trip_case_insensitively() {
    for l in Level::ALL {
        assert_eq!(l.to_string().parse::<Level>().unwrap(), l);
        assert_eq!(l.to_string().to_uppercase().parse::<Level>().unwrap(), l);
    }
    assert_eq!(" Turbo ".parse::<Level>().unwrap(), Level::Turbo);
    let err = "ludicrous".parse::<Level>().unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown level \"ludicrous\"; valid levels are basic, standard, aggressive, enterprise, turbo"
    );
}

#[test]
fn default_is_standard_and_presets_carry_the_seed_fields() {
    assert_eq!(Config::default(), Config::for_level(Level::Standard));
    let budgets: Vec<u8> = Level::ALL
        .iter()
        .map(|l| Config::for_level(*l).memory_budget_percent)
        .collect();
    assert_eq!(budgets, vec![50, 75, 80, 90, 95]);
    let e = Config::for_level(Level::Enterprise);
    assert_eq!(e.rt_policy, sprint_config::RtPolicy::Fifo);
    assert!(e.huge_pages && e.numa_bind);
    assert_eq!(e.timer_slack_ns, Some(1_000));
    assert_eq!(Config::for_level(Level::Turbo).timer_slack_ns, Some(1));
    assert_eq!(Config::for_level(Level::Basic).timer_slack_ns, None);
    for l in Level::ALL {
        Config::for_level(l)
            .validate_on(&Machine::with_cpus(&[0, 1]))
            .unwrap();
        assert_eq!(Config::for_level(l).sources()["workers"], Source::Preset(l));
    }
}

#[test]
fn file_overrides_preset_and_environment_overrides_file() {
    let file = "level = \"aggressive\"\nworkers = 3\ncoop_budget = 16\ncpus = \"0-1\"\n";
    let cfg = Config::resolve(
        Some(Level::Basic),
        Some((Path::new("sprint.toml"), file)),
        vars(&[
            ("SPRINT_WORKERS", "1"),
            ("SPRINT_IDLE", "busy-poll"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(
        cfg.level,
        Level::Aggressive,
        "the file's level beats the code's"
    );
    assert_eq!(
        cfg.scheduling,
        Scheduling::StealWhenIdle,
        "preset of the chosen level"
    );
    assert_eq!(cfg.workers, Some(1), "environment beats file");
    assert_eq!(cfg.coop_budget, 16);
    assert_eq!(cfg.idle, IdleStrategy::BusyPoll);
    assert_eq!(cfg.cpus, Some(CpuList::new(vec![0, 1])));
    let s = cfg.sources();
    assert_eq!(s["level"], Source::File("sprint.toml".into()));
    assert_eq!(s["workers"], Source::Env("SPRINT_WORKERS".into()));
    assert_eq!(s["coop_budget"], Source::File("sprint.toml".into()));
    assert_eq!(s["stack_size"], Source::Preset(Level::Aggressive));
}

#[test]
fn sprint_level_overrides_code_and_file() {
    let cfg = Config::resolve(
        Some(Level::Turbo),
        Some((Path::new("f.toml"), "level = \"enterprise\"")),
        vars(&[("SPRINT_LEVEL", "BASIC")]),
    )
    .unwrap();
    assert_eq!(cfg.level, Level::Basic);
    assert_eq!(cfg.sources()["level"], Source::Env("SPRINT_LEVEL".into()));
}

#[test]
fn code_settings_sit_between_preset_and_file() {
    let cfg = Config::resolve_with(
        Some(Level::Basic),
        |c| {
            c.workers = Some(2);
            c.coop_budget = 7;
        },
        Some((Path::new("f.toml"), "coop_budget = 9")),
        vars(&[]),
    )
    .unwrap();
    assert_eq!(cfg.workers, Some(2));
    assert_eq!(cfg.sources()["workers"], Source::Code);
    assert_eq!(cfg.coop_budget, 9);
}

#[test]
fn environment_variables_alias_and_parse() {
    let cfg = Config::resolve(
        None,
        None,
        vars(&[
            ("SPRINT_IO", "epoll"),
            ("SPRINT_STRICT", "true"),
            ("SPRINT_CPUS", "1"),
            ("SPRINT_CONFIG", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.io_driver, sprint_config::IoDriver::Epoll);
    assert!(cfg.strict);
    assert_eq!(cfg.cpus, Some(CpuList::new(vec![1])));
}

fn invalid(cfg: &Config) -> String {
    cfg.validate_on(&Machine::with_cpus(&[0, 1]))
        .unwrap_err()
        .to_string()
}

#[test]
fn each_bad_value_names_the_field_the_value_and_why() {
    let mut c = Config::for_level(Level::Standard);
    c.workers = Some(0);
    assert_eq!(
        invalid(&c),
        "invalid value for `workers`: 0: a runtime needs at least one worker"
    );

    let mut c = Config::for_level(Level::Standard);
    c.cpus = Some(CpuList::new(vec![0, 7]));
    assert_eq!(
        invalid(&c),
        "invalid value for `cpus`: 0,7: CPU 7 is outside this process's allowed CPUs (0-1)"
    );

    let mut c = Config::for_level(Level::Standard);
    c.cpus = Some(CpuList::new(vec![1, 1]));
    assert_eq!(
        invalid(&c),
        "invalid value for `cpus`: 1,1: CPU 1 is listed twice"
    );

    let mut c = Config::for_level(Level::Standard);
    c.stack_size = 4096;
    assert_eq!(
        invalid(&c),
        "invalid value for `stack_size`: 4096: a worker stack must be at least 65536 bytes (64 KiB)"
    );

    let mut c = Config::for_level(Level::Standard);
    c.memory_budget_percent = 101;
    assert_eq!(
        invalid(&c),
        "invalid value for `memory_budget_percent`: 101: a percentage from 1 to 100"
    );

    let mut c = Config::for_level(Level::Standard);
    c.rt_policy = sprint_config::RtPolicy::Fifo;
    c.rt_priority = 0;
    assert_eq!(
        invalid(&c),
        "invalid value for `rt_priority`: 0: rt_policy = fifo needs a priority from 1 to 99"
    );

    let mut c = Config::for_level(Level::Standard);
    c.coop_budget = 0;
    assert!(invalid(&c).starts_with("invalid value for `coop_budget`: 0"));

    let mut c = Config::for_level(Level::Standard);
    c.timer_slack_ns = Some(0);
    assert!(invalid(&c).starts_with("invalid value for `timer_slack_ns`: 0"));

    let mut c = Config::for_level(Level::Basic);
    c.uring_sqpoll = true;
    assert_eq!(
        invalid(&c),
        "invalid value for `uring_sqpoll`: true: needs io_driver = uring, not epoll"
    );

    // Turbo's preset SQPOLL does not stop an operator from choosing epoll.
    let mut c = Config::for_level(Level::Turbo);
    c.io_driver = sprint_config::IoDriver::Epoll;
    c.workers = Some(1);
    c.validate().unwrap();
}

#[test]
fn an_unknown_key_in_the_file_is_an_error_naming_it() {
    let err = Config::resolve(
        None,
        Some((Path::new("bad.toml"), "workers = 2\nworkerz = 3\n")),
        vars(&[]),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }));
    let msg = err.to_string();
    assert!(msg.starts_with("bad.toml: "), "{msg}");
    assert!(msg.contains("unknown field `workerz`"), "{msg}");
}

#[test]
fn a_wrong_type_or_enum_value_in_the_file_is_an_error() {
    let msg = Config::from_toml("workers = \"four\"")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("workers"), "{msg}");
    let msg = Config::from_toml("idle = \"nap\"").unwrap_err().to_string();
    assert!(msg.contains("nap") && msg.contains("busy-poll"), "{msg}");
    let msg = Config::from_toml("level = \"warp\"")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("unknown level \\\"warp\\\"") || msg.contains("unknown level \"warp\""),
        "{msg}"
    );
}

#[test]
fn a_malformed_cpu_list_is_an_error_naming_the_field() {
    let err = Config::resolve(None, None, vars(&[("SPRINT_CPUS", "0-")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid value for `SPRINT_CPUS`: 0-:"),
        "{err}"
    );
    assert!(err.contains("not a CPU number"), "{err}");
    let msg = Config::from_toml("cpus = \"3-1\"").unwrap_err().to_string();
    assert!(msg.contains("runs backwards"), "{msg}");
}

#[test]
fn bad_environment_values_and_unknown_variables_are_errors() {
    let err = Config::resolve(None, None, vars(&[("SPRINT_WORKERS", "many")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("invalid value for `SPRINT_WORKERS`: many:"),
        "{err}"
    );
    let err = Config::resolve(None, None, vars(&[("SPRINT_WORKRS", "2")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("unknown environment variable SPRINT_WORKRS; Sprint reads "),
        "{err}"
    );
    assert!(err.contains("SPRINT_WORKERS"), "{err}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let err = Config::load_from(
        None,
        |_| {},
        Some(std::path::Path::new("/nonexistent/sprint.toml")),
        std::iter::empty(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("cannot read the config file /nonexistent/sprint.toml"),
        "{err}"
    );
}

#[test]
fn config_round_trips_through_toml() {
    let c = Config::for_level(Level::Enterprise);
    let text = toml::to_string(&c).unwrap();
    let back = Config::from_toml(&text).unwrap();
    let mut a = c.clone();
    let mut b = back;
    a.sources.clear();
    b.sources.clear();
    assert_eq!(a, b);
}

/// The possible-CPU bound as the error states it.
fn possible() -> usize {
    sprint_config::possible_cpus()
}

#[test]
fn a_huge_cpu_range_is_refused_by_its_limit_before_it_is_expanded() {
    let limit = format!("the limit is {}", possible());
    for range in ["0-4000000000", "0-18446744073709551615"] {
        let top = range.trim_start_matches("0-");
        // The file: a parse error naming the key and the value.
        let msg = Config::from_toml(&format!("cpus = \"{range}\""))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cpus"), "{msg}");
        assert!(
            msg.contains(&format!("CPU {top} in \\\"{range}\\\""))
                || msg.contains(&format!("CPU {top} in \"{range}\"")),
            "{msg}"
        );
        assert!(msg.contains(&limit), "{msg}");
        // The environment: the variable, the value and the limit.
        let err = Config::resolve(None, None, vars(&[("SPRINT_CPUS", range)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "invalid value for `SPRINT_CPUS`: {range}: CPU {top}"
            )),
            "{err}"
        );
        assert!(err.contains(&limit), "{err}");
    }
    // A TOML array is bounded the same way.
    let msg = Config::from_toml(&format!("cpus = [0, {}]", possible()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&limit), "{msg}");
}

/// A machine of `allowed` CPUs and `memory` bytes.
fn on(allowed: &[usize], memory: u64) -> Machine {
    Machine {
        allowed: Some(allowed.to_vec()),
        isolated: vec![],
        memory: Some(memory),
    }
}

/// The error of `cfg` on `allowed` CPUs and `memory` bytes.
fn refused_on(cfg: &Config, allowed: &[usize], memory: u64) -> ConfigError {
    cfg.validate_on(&on(allowed, memory)).unwrap_err()
}

#[test]
fn workers_are_bounded_by_the_allowed_cpus() {
    let per_cpu = sprint_config::MAX_WORKERS_PER_CPU;
    let mut c = Config::for_level(Level::Standard);
    c.workers = Some(2 * per_cpu);
    c.validate_on(&on(&[0, 1], 64 << 30)).unwrap();
    c.workers = Some(2 * per_cpu + 1);
    let err = refused_on(&c, &[0, 1], 64 << 30);
    let msg = err.to_string();
    assert!(
        matches!(&err, ConfigError::Limit { field, value, limit, .. }
            if field == "workers" && *value == (2 * per_cpu + 1).to_string() && *limit == (2 * per_cpu).to_string()),
        "{msg}"
    );
    assert!(msg.contains("per allowed CPU"), "{msg}");
}

#[test]
fn workers_are_bounded_by_the_memory_budget() {
    // 4096 workers at Aggressive (1 MiB stacks) on a machine with CPUs
    // enough for them and 4 GiB: refused, naming the largest count that
    // fits, which itself passes.
    let allowed: Vec<usize> = (0..4096).collect();
    let mut c = Config::for_level(Level::Aggressive);
    c.workers = Some(4096);
    let err = refused_on(&c, &allowed, 4 << 30);
    let msg = err.to_string();
    let ConfigError::Limit {
        field,
        value,
        limit,
        ..
    } = &err
    else {
        panic!("{msg}");
    };
    assert_eq!(
        (field.as_str(), value.as_str()),
        ("workers", "4096"),
        "{msg}"
    );
    assert!(
        msg.contains("over the memory budget 3276 MiB (80 % of 4096 MiB)"),
        "{msg}"
    );
    let fit: usize = limit.parse().unwrap();
    assert!(fit < 4096, "{msg}");
    c.workers = Some(fit);
    c.validate_on(&on(&allowed, 4 << 30)).unwrap();
    c.workers = Some(fit + 1);
    assert!(c.validate_on(&on(&allowed, 4 << 30)).is_err());
}

#[test]
fn a_huge_stack_names_the_field_the_value_and_the_limit() {
    let mut c = Config::for_level(Level::Standard);
    c.stack_size = usize::MAX / 2;
    let msg = refused_on(&c, &[0, 1], 64 << 30).to_string();
    assert_eq!(
        msg,
        format!(
            "invalid value for `stack_size`: {}: the limit is 1073741824 bytes: a worker stack of more than 1 GiB is a mistake",
            usize::MAX / 2
        )
    );
    // In a small budget, the budget is the limit.
    c.stack_size = 512 << 20;
    let msg = refused_on(&c, &[0, 1], 200 << 20).to_string();
    assert_eq!(msg, "invalid value for `stack_size`: 536870912: the limit is 157286400 bytes: one worker's stack must fit in the memory budget 150 MiB (75 % of 200 MiB)");
    // Through the file, on this machine.
    let err = Config::load_from(
        None,
        |_| {},
        None,
        vars(&[("SPRINT_STACK_SIZE", "4611686018427387904")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("invalid value for `stack_size`: 4611686018427387904: the limit is "),
        "{err}"
    );
}

#[test]
fn the_adaptive_fields_are_validated_even_with_the_controller_off() {
    let check = |f: fn(&mut Config), want: &str| {
        let mut c = Config::for_level(Level::Standard);
        f(&mut c);
        assert!(!c.adaptive);
        let msg = invalid(&c);
        assert!(msg.starts_with(want), "{msg}");
    };
    check(
        |c| c.adaptive_objective = "latency p42 < 1ms".into(),
        "invalid value for `adaptive_objective`: latency p42 < 1ms: ",
    );
    check(
        |c| {
            c.adaptive_min_level = Level::Turbo;
            c.adaptive_max_level = Level::Basic;
        },
        "invalid value for `adaptive_min_level`: turbo: above adaptive_max_level (basic)",
    );
    check(
        |c| c.adaptive_up_after = 0,
        "invalid value for `adaptive_up_after`: 0: at least 1",
    );
    check(
        |c| c.adaptive_down_after = 0,
        "invalid value for `adaptive_down_after`: 0: at least 1",
    );
    check(
        |c| c.adaptive_window_ms = u64::MAX,
        "invalid value for `adaptive_window_ms`: 18446744073709551615: the limit is 86400000 ms (one day)",
    );
    check(
        |c| c.adaptive_busy_below_percent = 101,
        "invalid value for `adaptive_busy_below_percent`: 101: the limit is 100 %",
    );
    check(
        |c| c.shutdown_timeout_ms = u64::MAX,
        "invalid value for `shutdown_timeout_ms`: 18446744073709551615: the limit is 86400000 ms (one day)",
    );
}

#[test]
fn a_preallocation_over_the_memory_budget_names_the_field_and_the_limit() {
    // Turbo on 2 CPUs and 4 GiB: a budget of 95 %.
    let mut c = Config::for_level(Level::Turbo);
    c.validate_on(&on(&[0, 1], 4 << 30)).unwrap();
    let budget = ((4u64 << 30) / 100 * 95) as usize;
    c.arena_prealloc_bytes = budget;
    c.validate_on(&on(&[0, 1], 4 << 30)).unwrap();
    c.arena_prealloc_bytes = budget + 1;
    let msg = refused_on(&c, &[0, 1], 4 << 30).to_string();
    assert_eq!(
        msg,
        format!(
            "invalid value for `arena_prealloc_bytes`: {}: the limit is {budget} bytes: one worker's arena preallocation must fit in the memory budget 3891 MiB (95 % of 4096 MiB)",
            budget + 1
        )
    );
    // Without arenas the value is not used, so not checked.
    c.arenas = false;
    c.validate_on(&on(&[0, 1], 4 << 30)).unwrap();
    // The level's own figure is not refused where it does not fit (a
    // 64 MiB cgroup): it shrinks at start, reported.
    let t = Config::for_level(Level::Turbo);
    t.validate_on(&on(&[0, 1], 64 << 20)).unwrap();
}

#[test]
fn turbo_locks_its_arenas_not_the_whole_process() {
    let t = Config::for_level(Level::Turbo);
    assert_eq!(t.lock_memory, sprint_config::LockMemory::Arenas);
    assert_eq!(t.arena_prealloc_bytes, 64 << 20);
    assert!(t.prefault && t.arenas);
}
