//! The configuration parser on any text: a TOML file, then after a line
//! `--` the environment as `NAME=value` lines, resolved by
//! `Config::resolve` (the precedence of `Config::load` without the
//! process's own environment or files) and validated. Each value is also
//! parsed as a CPU list, the way `SPRINT_CPUS` and `sprint-tune --cpus`
//! take it. Bad input is an error that says something, never a panic or
//! an abort (an allocation past libFuzzer's limit counts as one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sprint_config::{Config, CpuList, Machine};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, env) = match text.split_once("\n--\n") {
        Some((f, e)) => (Some(f), e),
        None => (Some(&text[..]), ""),
    };
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (_, v) in &vars {
        if let Err(e) = v.parse::<CpuList>() {
            assert!(!e.to_string().is_empty());
        }
    }
    match Config::resolve(None, file.map(|t| (Path::new("fuzz.toml"), t)), vars) {
        Ok(cfg) => {
            for r in [cfg.validate_on(&Machine::with_cpus(&[0, 1])), cfg.validate()] {
                if let Err(e) = r {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
