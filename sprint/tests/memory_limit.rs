//! A runtime in a real memory cgroup never dies of its own start-up, and
//! `health()` sees the process near the limit before the kernel kills
//! it. Each case runs a child process that moves itself into a fresh
//! memory cgroup (v1 here; v2 where that is what is mounted) before it
//! execs this binary, so that all of its memory is charged there; the
//! cgroup is removed when the test ends, even by a panic. Without root
//! or a memory controller the test says so and passes (declared skip,
//! as in tests/cgroup.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHILD: &str = "MEMORY_LIMIT_CHILD_OF_THE_SPRINT_CORE_TESTS";
const MIB: u64 = 1 << 20;

/// A memory cgroup made for one child; removed when dropped.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// A new cgroup limited to `bytes` (and no swap), or what is missing
    /// (a `SPRINT_REQUIRE` name) and why.
    fn new(name: &str, bytes: u64) -> Result<Cgroup, (&'static str, String)> {
        let root = Path::new("/sys/fs/cgroup");
        let v1 = root.join("memory");
        let (dir, v2) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(name), false)
        } else if std::fs::read_to_string(root.join("cgroup.subtree_control"))
            .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"))
        {
            (root.join(name), true)
        } else {
            return Err((
                "memcg",
                "no cgroup v1 memory hierarchy, nor v2 with the memory controller".into(),
            ));
        };
        std::fs::create_dir(&dir)
            .map_err(|e| ("root", format!("cannot create {} ({e})", dir.display())))?;
        let cg = Cgroup { dir, v2 };
        let (limit, swap) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        std::fs::write(cg.dir.join(limit), bytes.to_string()).unwrap();
        // No swap to hide in: the limit is where the kernel kills.
        if cg.dir.join(swap).exists() {
            let _ = std::fs::write(
                cg.dir.join(swap),
                if v2 { "0".into() } else { bytes.to_string() },
            );
        }
        Ok(cg)
    }

    /// OOM kills in this cgroup so far.
    fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no oom_kill line in {file}: {text}"))
    }

    /// The most memory charged to it so far, when the kernel says.
    fn peak_mib(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        let text = std::fs::read_to_string(self.dir.join(file)).ok()?;
        Some(text.trim().parse::<u64>().ok()? / MIB)
    }

    /// Runs this binary's test `name` in the cgroup with `CHILD=case`.
    fn run(&self, name: &str, case: &str) -> Output {
        Command::new("sh")
            .args([
                "-c",
                r#"echo $$ > "$0/cgroup.procs" && exec "$@""#,
                self.dir.to_str().unwrap(),
            ])
            .arg(std::env::current_exe().unwrap())
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, case)
            .output()
            .unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The child is gone (waited for); its charges leave with it.
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

fn describe(out: &Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    format!(
        "status {:?} (signal {:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn turbo(strict: bool) -> sprint::Builder {
    sprint::Builder::new()
        .level(sprint::Level::Turbo)
        .read_env(false)
        .workers(2)
        // Real-time scheduling is tested in tests/tune.rs alone.
        .configure(move |c| {
            c.rt_policy = sprint::config::RtPolicy::None;
            c.strict = strict;
        })
}

#[test]
fn turbo_in_64_mib_starts_degraded_or_refuses_when_strict_and_is_never_killed() {
    let name = "turbo_in_64_mib_starts_degraded_or_refuses_when_strict_and_is_never_killed";
    match std::env::var(CHILD).as_deref() {
        Ok("turbo") => {
            let rt = turbo(false).build().expect("Turbo starts, degraded");
            println!("REPORT {}", rt.start_report().memory().join(" | "));
            return;
        }
        Ok("strict") => {
            let e = turbo(true).build().expect_err("strict Turbo cannot fit");
            println!("ERROR {e}");
            return;
        }
        _ => {}
    }
    let cg = match Cgroup::new(&format!("sprint-turbo-{}", std::process::id()), 64 * MIB) {
        Ok(cg) => cg,
        Err((need, why)) => {
            common::skip(need, why);
            return;
        }
    };
    let limit_file = if cg.v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let named = format!(
        "the cgroup memory limit 64 MiB ({})",
        cg.dir.join(limit_file).display()
    );

    let out = cg.run(name, "turbo");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\npeak: {:?} MiB", cg.peak_mib());
    assert!(
        stdout.contains(&named),
        "the report names the limit: {stdout}"
    );
    assert!(
        stdout.contains("each arena preallocates") && stdout.contains("instead of 64 MiB"),
        "the report says why the preallocation is smaller: {stdout}"
    );

    let out = cg.run(name, "strict");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name on the same line, before it.
    let error = stdout
        .split("ERROR ")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or("");
    assert!(error.contains(&named), "{stdout}");
    assert!(
        error.contains("the level needs") && error.contains("arenas 2 x 64 MiB"),
        "{stdout}"
    );

    assert_eq!(cg.oom_kills(), 0, "no OOM kill in the cgroup");
}

#[test]
fn a_spawn_flood_in_256_mib_is_flagged_by_health_before_the_kill() {
    let name = "a_spawn_flood_in_256_mib_is_flagged_by_health_before_the_kill";
    if std::env::var(CHILD).as_deref() == Ok("flood") {
        let rt = sprint::Builder::new()
            .level(sprint::Level::Standard)
            .read_env(false)
            .workers(2)
            .build()
            .unwrap();
        // Tasks that never finish, each holding 64 KiB it has written: up
        // to 1 GiB, four times the limit. Checked every 4 MiB.
        for batch in 0..256 {
            for _ in 0..64 {
                let held = vec![batch as u8 | 1; 64 << 10];
                rt.spawn(async move {
                    futures::future::pending::<()>().await;
                    drop(held);
                });
            }
            let problems = rt.health();
            if let Some(p) = problems
                .iter()
                .find(|p| matches!(p, sprint::metrics::Problem::ResidentHigh { .. }))
            {
                println!("FLAGGED after {} MiB: {p}", (batch + 1) * 4);
                std::io::Write::flush(&mut std::io::stdout()).unwrap();
                // Leave at once: freeing 200 MiB of tasks one by one, or
                // LeakSanitizer's walk at exit (the ASan build), could
                // itself pass the limit.
                // SAFETY: _exit ends the process; nothing runs after it.
                unsafe { libc::_exit(0) };
            }
        }
        println!("NEVER FLAGGED");
        return;
    }
    let cg = match Cgroup::new(&format!("sprint-flood-{}", std::process::id()), 256 * MIB) {
        Ok(cg) => cg,
        Err((need, why)) => {
            common::skip(need, why);
            return;
        }
    };
    let out = cg.run(name, "flood");
    assert!(
        out.status.success(),
        "killed before health() saw it: {}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\npeak: {:?} MiB", cg.peak_mib());
    assert!(stdout.contains("FLAGGED after"), "{stdout}");
    assert!(
        stdout.contains("the cgroup memory limit 256 MiB"),
        "{stdout}"
    );
    assert_eq!(cg.oom_kills(), 0, "no OOM kill in the cgroup");
}
