#![allow(dead_code)]

//! Child-process helpers: process-wide settings are changed in a child.

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
