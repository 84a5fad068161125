//! `sprint-tune` on real system settings, always put back. The Aggressive
//! profile changes vm.stat_interval and kernel.timer_migration; a guard
//! writes their original values back when each test ends, even by a
//! panic. These tests change system-wide settings, so they run one at a
//! time (a lock) in this binary of their own.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TUNE: &str = env!("CARGO_BIN_EXE_sprint-tune");
const FILES: [&str; 2] = [
    "/proc/sys/vm/stat_interval",
    "/proc/sys/kernel/timer_migration",
];
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Originals(Vec<(String, String)>);

impl Originals {
    fn save() -> Option<Originals> {
        let mut v = Vec::new();
        for f in FILES {
            v.push((
                f.to_string(),
                std::fs::read_to_string(f).ok()?.trim().to_string(),
            ));
        }
        // Only root may write them: without that, skip.
        std::fs::write(FILES[0], &v[0].1).ok()?;
        Some(Originals(v))
    }
    fn live(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(f, _)| std::fs::read_to_string(f).unwrap().trim().to_string())
            .collect()
    }
    fn originals(&self) -> Vec<String> {
        self.0.iter().map(|(_, v)| v.clone()).collect()
    }
}

impl Drop for Originals {
    fn drop(&mut self) {
        for (f, v) in &self.0 {
            let _ = std::fs::write(f, v);
        }
    }
}

fn journal(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sprint-tune-{}-{name}", std::process::id()))
}

fn tune(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TUNE).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts this binary's ignored test `test` (a child that applies system
/// settings, journalling into `journal`, named to it by `var`), and returns
/// once it says APPLIED.
fn applied_child(test: &str, var: &str, journal: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--ignored"])
        .env(var, journal)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    while !line.contains("APPLIED") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
    }
    child
}

#[test]
fn a_sigkilled_tuner_is_undone_by_restore() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = Originals::save() else {
        eprintln!("skipped: cannot write sysctls (not root?)");
        return;
    };
    let j = journal("crash");
    let _ = std::fs::remove_file(&j);
    // A child applies through the library and is killed before it can
    // restore anything.
    let mut child = applied_child("child_applies_and_waits", "SPRINT_TUNE_TEST_JOURNAL", &j);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(orig.live(), orig.originals(), "the child changed them");
    let (code, stdout, stderr) = tune(&["restore", "--journal", j.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        orig.live(),
        orig.originals(),
        "restore put them back: {stdout}"
    );
    assert!(!j.exists(), "the journal is removed");
}

#[test]
#[ignore = "the child of a_sigkilled_tuner_is_undone_by_restore"]
fn child_applies_and_waits() {
    let j = PathBuf::from(std::env::var_os("SPRINT_TUNE_TEST_JOURNAL").unwrap());
    let cfg = sprint::Config::for_level(sprint::Level::Aggressive);
    let settings = sprint::system::profile(&cfg, &[0], &[0, 1]);
    let guard = sprint::system::apply(&settings, sprint::Level::Aggressive, &j, true).unwrap();
    println!("APPLIED {}", guard.report.len());
    std::thread::sleep(std::time::Duration::from_secs(60));
    drop(guard);
}

/// SIGTERM to a `#[sprint::main]` program holding applied system settings
/// in its main future: the graceful shutdown drops the future, whose guard
/// puts every value back and removes the journal before the process exits.
#[test]
fn sigterm_to_a_sprint_main_program_restores_its_settings() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = Originals::save() else {
        eprintln!("skipped: cannot write sysctls (not root?)");
        return;
    };
    // Not SPRINT_*: the runtime refuses environment variables it does not
    // know.
    let j = journal("sigterm");
    let _ = std::fs::remove_file(&j);
    let mut child = applied_child("child_main_applies_and_waits", "MAIN_CHILD_JOURNAL", &j);
    assert_ne!(orig.live(), orig.originals(), "the child changed them");
    // SAFETY: kill with the child's pid and a valid signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert_eq!(orig.live(), orig.originals(), "the shutdown put them back");
    assert!(!j.exists(), "the journal is removed");
}

#[test]
#[ignore = "the child of sigterm_to_a_sprint_main_program_restores_its_settings"]
fn child_main_applies_and_waits() {
    let j = PathBuf::from(std::env::var_os("MAIN_CHILD_JOURNAL").unwrap());
    let options = sprint::__private::MainOptions {
        level: Some(sprint::Level::Basic),
        workers: Some(1),
        config: None,
    };
    // What `#[sprint::main]` expands to.
    sprint::__private::run_main(options, async move {
        let cfg = sprint::Config::for_level(sprint::Level::Aggressive);
        let settings = sprint::system::profile(&cfg, &[0], &[0, 1]);
        let guard = sprint::system::apply(&settings, sprint::Level::Aggressive, &j, true).unwrap();
        println!("APPLIED {}", guard.report.len());
        sprint::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(guard);
    });
}

#[test]
fn apply_verify_restore_round_trip_and_a_locked_journal() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = Originals::save() else {
        eprintln!("skipped: cannot write sysctls");
        return;
    };
    let j = journal("cli");
    let js = j.to_str().unwrap();
    let (code, out, err) = tune(&[
        "apply",
        "--level",
        "aggressive",
        "--system",
        "--journal",
        js,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["scope"] == "system"));
    let (code, out, _) = tune(&["verify", "--level", "aggressive", "--json"]);
    assert_eq!(code, 0, "verified after apply: {out}");
    // A second apply finds the journal there and refuses.
    let (code, _, err) = tune(&[
        "apply",
        "--level",
        "aggressive",
        "--system",
        "--journal",
        js,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("run `sprint-tune restore` first"), "{err}");
    // While a tuner holds the journal, another is refused.
    {
        let held =
            sprint::system::apply(&[], sprint::Level::Basic, &journal("held"), false).unwrap();
        let (code, _, err) = tune(&[
            "apply",
            "--level",
            "aggressive",
            "--system",
            "--journal",
            journal("held").to_str().unwrap(),
        ]);
        assert_eq!(code, 2);
        assert!(err.contains("is locked by another tuner"), "{err}");
        held.restore();
    }
    let (code, out, err) = tune(&["restore", "--journal", js]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(orig.live(), orig.originals());
    let (code, out, _) = tune(&["verify", "--level", "aggressive"]);
    if orig.originals() != ["10", "0"] {
        assert_eq!(code, 1, "differs after restore: {out}");
    }
}

#[test]
fn a_corrupt_or_foreign_journal_is_refused_by_name() {
    let j = journal("corrupt");
    std::fs::write(&j, "not json\n").unwrap();
    let (code, _, err) = tune(&["restore", "--journal", j.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is corrupt at line 1"), "{err}");
    std::fs::write(
        &j,
        "{\"boot_id\":\"00000000-0000-0000-0000-000000000000\",\"pid\":1,\"level\":\"turbo\"}\n",
    )
    .unwrap();
    let (code, _, err) = tune(&["restore", "--journal", j.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("was written in another boot"), "{err}");
    let _ = std::fs::remove_file(&j);
    assert!(Path::new(TUNE).exists());
}

#[test]
fn doctor_and_bad_input() {
    let (code, out, err) = tune(&["doctor", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["best_level"].is_string());
    assert!(v["system"]["allowed_cpus"].is_array());
    let (code, _, err) = tune(&["verify", "--level", "ludicrous"]);
    assert_ne!(code, 0);
    assert!(err.contains("ludicrous"), "{err}");
    let (code, _, err) = tune(&["verify", "--level", "aggressive", "--cpus", "4096"]);
    assert_eq!(code, 2);
    assert!(err.contains("cpus"), "{err}");
    let (code, _, err) = tune(&["apply", "--level", "turbo"]);
    assert_eq!(code, 2);
    assert!(err.contains("--system"), "{err}");
}

#[test]
fn a_huge_cpu_range_is_refused_with_its_limit() {
    let limit = format!("the limit is {}", sprint::topology::possible_cpus());
    for range in ["0-4000000000", "0-18446744073709551615"] {
        let (code, _, err) = tune(&["verify", "--level", "aggressive", "--cpus", range]);
        assert_eq!(code, 2, "{err}");
        let top = range.trim_start_matches("0-");
        assert!(
            err.contains(&format!("'{range}' for '--cpus <CPUS>': CPU {top} in")),
            "{err}"
        );
        assert!(err.contains(&limit), "{err}");
    }
}
