//! `sprint-tune` on real system settings, always put back. The Aggressive
//! profile changes vm.stat_interval and kernel.timer_migration; a guard
//! writes their original values back when each test ends, even by a
//! panic. These tests change system-wide settings, so they run one at a
//! time (a lock) in this binary of their own.

mod common;

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

/// A file's value as the tuner reads it (THP's `[madvise]` as `madvise`).
fn value(f: &str) -> String {
    sprint_os::system::current(Path::new(f)).unwrap()
}

impl Originals {
    fn save() -> Option<Originals> {
        Originals::of(&FILES)
    }
    /// The values of `files`, written back on drop.
    fn of(files: &[&str]) -> Option<Originals> {
        let mut v = Vec::new();
        for f in files {
            v.push((
                f.to_string(),
                sprint_os::system::current(Path::new(f)).ok()?,
            ));
        }
        // Only root may write them: without that, skip.
        std::fs::write(files[0], &v[0].1).ok()?;
        Some(Originals(v))
    }
    fn live(&self) -> Vec<String> {
        self.0.iter().map(|(f, _)| value(f)).collect()
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
        .stdin(Stdio::piped())
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
        common::skip("root", "cannot write sysctls");
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
    let settings = sprint_os::system::profile(&cfg, &[0], &[0, 1]);
    let guard = sprint_os::system::apply(&settings, sprint::Level::Aggressive, &j, true).unwrap();
    println!("APPLIED {}", guard.report.len());
    // Held until the parent kills this process (the minute only bounds a
    // child left behind).
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
        common::skip("root", "cannot write sysctls");
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
        ..Default::default()
    };
    // What `#[sprint::main]` expands to.
    sprint::__private::run_main(options, async move {
        let cfg = sprint::Config::for_level(sprint::Level::Aggressive);
        let settings = sprint_os::system::profile(&cfg, &[0], &[0, 1]);
        let guard =
            sprint_os::system::apply(&settings, sprint::Level::Aggressive, &j, true).unwrap();
        println!("APPLIED {}", guard.report.len());
        // Held until the parent's SIGTERM (the minute only bounds a child
        // left behind).
        sprint::time::sleep(std::time::Duration::from_secs(60)).await;
        drop(guard);
    });
}

#[test]
fn apply_verify_restore_round_trip_and_a_locked_journal() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = Originals::save() else {
        common::skip("root", "cannot write sysctls");
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
            sprint_os::system::apply(&[], sprint::Level::Basic, &journal("held"), false).unwrap();
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
    let limit = format!("the limit is {}", sprint_os::placement::possible_cpus());
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

/// The journal's first line, as a tuner of this boot writes it.
fn header() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    format!(
        "{{\"boot_id\":\"{}\",\"pid\":1,\"level\":\"turbo\"}}\n",
        boot.trim()
    )
}

/// A journal line recording `old` as `path`'s value.
fn record(path: &str, old: &str) -> String {
    let json = |s: &str| serde_json::to_string(s).unwrap();
    format!("{{\"path\":{},\"old\":{}}}\n", json(path), json(old))
}

/// A value `f` accepts other than `v`.
fn other(f: &str, v: &str) -> String {
    match (f, v) {
        ("/proc/sys/kernel/timer_migration", "0") => "1".into(),
        ("/proc/sys/kernel/timer_migration", _) => "0".into(),
        (_, "10") => "11".into(),
        _ => "10".into(),
    }
}

const GOOD: [&str; 4] = [
    "/proc/sys/vm/stat_interval",
    "/proc/sys/kernel/timer_migration",
    "/proc/sys/net/core/busy_poll",
    "/proc/sys/net/core/busy_read",
];
const THP: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// Saves GOOD and THP, then changes every GOOD file, as an apply would.
fn changed_settings() -> Option<Originals> {
    let mut files = GOOD.to_vec();
    files.push(THP);
    let orig = Originals::of(&files)?;
    for (f, v) in &orig.0[..GOOD.len()] {
        std::fs::write(f, other(f, v)).unwrap();
    }
    Some(orig)
}

/// An IRQ whose affinity the kernel will not change here (writing back
/// its own value is refused), if there is one.
fn refusing_irq() -> Option<(String, String)> {
    let mut irqs: Vec<PathBuf> = std::fs::read_dir("/proc/irq")
        .ok()?
        .flatten()
        .map(|e| e.path().join("smp_affinity_list"))
        .filter(|p| p.exists())
        .collect();
    irqs.sort();
    irqs.into_iter().find_map(|p| {
        let v = std::fs::read_to_string(&p).ok()?.trim().to_string();
        std::fs::write(&p, &v)
            .is_err()
            .then(|| (p.display().to_string(), v))
    })
}

/// A journal whose entries the kernel partly refuses: every other entry is
/// put back, each refused one is named with the kernel's error, the exit
/// status is 1, and the journal keeps the refused entries alone. The
/// refusals sit between good entries, so that good ones come after them
/// both in the file and in restore's order (newest first).
#[test]
fn restore_puts_back_everything_the_kernel_accepts_and_keeps_the_rest() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = changed_settings() else {
        common::skip("root", "cannot write sysctls");
        return;
    };
    let originals = orig.originals();
    // The kernel refuses a THP mode that does not exist (EINVAL), and,
    // where one is here, an IRQ that cannot move (EPERM, EIO).
    let mut refused = vec![(THP.to_string(), "bogus".to_string())];
    let irq = refusing_irq();
    let mut text = header();
    text += &record(GOOD[0], &originals[0]);
    text += &record(THP, "bogus");
    text += &record(GOOD[1], &originals[1]);
    if let Some((p, v)) = &irq {
        text += &record(p, v);
        refused.push((p.clone(), v.clone()));
    }
    text += &record(GOOD[2], &originals[2]);
    text += &record(GOOD[3], &originals[3]);
    let j = journal("refused");
    std::fs::write(&j, &text).unwrap();
    let (code, out, err) = tune(&["restore", "--journal", j.to_str().unwrap()]);
    let kept = std::fs::read_to_string(&j).unwrap_or_default();
    let _ = std::fs::remove_file(&j);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        orig.live()[..GOOD.len()],
        originals[..GOOD.len()],
        "{out}{err}"
    );
    for f in GOOD {
        assert!(out.contains(&format!("restored {f} = ")), "{out}");
    }
    assert!(
        err.contains(&format!(
            "could not restore {THP} = \"bogus\": Invalid argument (os error {})",
            libc::EINVAL
        )),
        "{err}"
    );
    if let Some((p, _)) = &irq {
        assert!(err.contains(&format!("could not restore {p} = ")), "{err}");
        assert!(err.contains("(os error "), "{err}");
    }
    let mut want = header();
    for (p, v) in &refused {
        want += &record(p, v);
    }
    assert_eq!(kept, want, "the journal keeps the refused entries alone");
    assert!(err.contains(&format!(
        "{} of {} settings could not be put back",
        refused.len(),
        refused.len() + GOOD.len()
    )));
}

/// A journal naming a file outside the tuner's list is refused before
/// anything is written: neither that file nor the listed ones change.
#[test]
fn a_journal_naming_a_foreign_file_is_refused_and_nothing_is_written() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = changed_settings() else {
        common::skip("root", "cannot write sysctls");
        return;
    };
    let before = orig.live();
    let victim = journal("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let v = victim.to_str().unwrap();
    let text = header()
        + &record(GOOD[0], &orig.originals()[0])
        + &record(v, "overwritten")
        + &record(GOOD[1], &orig.originals()[1]);
    let j = journal("foreign");
    std::fs::write(&j, &text).unwrap();
    let (code, out, err) = tune(&["restore", "--journal", j.to_str().unwrap()]);
    let kept = std::fs::read_to_string(&j).unwrap_or_default();
    let victim_now = std::fs::read_to_string(&victim).unwrap();
    let _ = std::fs::remove_file(&j);
    let _ = std::fs::remove_file(&victim);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "the journal {} names {v}, which is not a file the tuner changes: nothing was written",
            j.display()
        )),
        "{err}"
    );
    assert_eq!(victim_now, "untouched");
    assert_eq!(orig.live(), before, "nothing was written");
    assert_eq!(kept, text, "the journal is left for the operator");
}

/// A crash in the middle of an append leaves a last line without its
/// newline, or cut inside its JSON: it is ignored with a warning and
/// every entry before it is put back.
#[test]
fn a_torn_last_line_is_ignored_with_a_warning() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for torn in [
        "{\"path\":\"/proc/sys/net/core/busy_poll\",\"ol",
        "{\"path\":\"/proc/sys/net/core/busy_poll\",\"ol\n",
        "{\"path\":\"/proc/sys/net/core/busy_poll\",\"old\":\"10\"}",
    ] {
        let Some(orig) = changed_settings() else {
            common::skip("root", "cannot write sysctls");
            return;
        };
        let changed = orig.live();
        let text = header()
            + &record(GOOD[0], &orig.originals()[0])
            + &record(GOOD[1], &orig.originals()[1])
            + torn;
        let j = journal("torn");
        std::fs::write(&j, &text).unwrap();
        let (code, out, err) = tune(&["restore", "--journal", j.to_str().unwrap()]);
        let gone = !j.exists();
        let _ = std::fs::remove_file(&j);
        assert_eq!(code, 0, "{torn:?}: {out}{err}");
        assert!(
            err.contains("warning: ignored the last line of the journal") && err.contains("line 4"),
            "{err}"
        );
        let live = orig.live();
        assert_eq!(live[..2], orig.originals()[..2], "{torn:?}: {out}");
        assert_eq!(live[2], changed[2], "the torn entry is not written");
        assert!(gone, "the journal is removed");
    }
}

/// A tuner that is shutting down still holds the journal: restore waits
/// for it (a bounded time) and then puts back what it left. Past the
/// wait, restore gives up without writing anything.
#[test]
fn restore_waits_a_bounded_time_for_a_dying_tuners_lock() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(orig) = Originals::save() else {
        common::skip("root", "cannot write sysctls");
        return;
    };
    let j = journal("dying");
    let _ = std::fs::remove_file(&j);
    let js = j.to_str().unwrap().to_string();
    // Dropped before `orig` puts the values back, even on a failure.
    let mut dying = Dying(
        applied_child("child_applies_and_dies_on_request", "DYING_JOURNAL", &j),
        j.clone(),
    );
    let applied = orig.live();
    assert_ne!(applied, orig.originals(), "the child changed them");
    // Held throughout a short wait: refused, nothing written.
    let (code, _, err) = tune(&["restore", "--journal", &js, "--lock-wait-ms", "100"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is still locked by another tuner after waiting 100 ms"),
        "{err}"
    );
    assert_eq!(orig.live(), applied);
    // A restore that waits; the child dies once it is waiting.
    let mut restore = Command::new(TUNE)
        .args(["restore", "--journal", &js, "--lock-wait-ms", "60000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(restore.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting up to 60000 ms") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "restore did not wait"
        );
    }
    drop(dying.0.stdin.take());
    assert!(dying.0.wait().unwrap().success());
    let out = restore.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(orig.live(), orig.originals(), "{stdout}");
    assert!(!j.exists(), "the journal is removed");
}

/// The tuner child and its journal, ended and removed on drop.
struct Dying(std::process::Child, PathBuf);

impl Drop for Dying {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

#[test]
#[ignore = "the child of restore_waits_a_bounded_time_for_a_dying_tuners_lock"]
fn child_applies_and_dies_on_request() {
    let j = PathBuf::from(std::env::var_os("DYING_JOURNAL").unwrap());
    let cfg = sprint::Config::for_level(sprint::Level::Aggressive);
    let settings = sprint_os::system::profile(&cfg, &[0], &[0, 1]);
    let guard = sprint_os::system::apply(&settings, sprint::Level::Aggressive, &j, true).unwrap();
    println!("APPLIED {}", guard.report.len());
    // Until the parent closes stdin; then the process ends without
    // restoring, as a killed tuner would, and its lock goes with it.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    guard.keep();
    std::process::exit(0);
}
