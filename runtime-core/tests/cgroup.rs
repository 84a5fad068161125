//! Containers, for real: a child process is moved into a new cgroup v1
//! pair (this machine mounts v1) with a 1-CPU quota and a 1 GiB memory
//! limit; its runtime must start one worker and budget from the limit.
//! The cgroups are removed when the test ends, even by a panic. One test
//! in its own binary.

mod common;
use common::Start;
use sprint_core::config::ConfigBuilder;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const CHILD: &str = "CGROUP_CHILD_OF_THE_SPRINT_CORE_TESTS";

struct Remove(Vec<PathBuf>);

impl Drop for Remove {
    fn drop(&mut self) {
        for d in &self.0 {
            if let Err(e) = std::fs::remove_dir(d) {
                eprintln!("could not remove {}: {e}", d.display());
            }
        }
    }
}

#[test]
fn one_cpu_and_a_memory_limit_give_one_worker_and_the_budget() {
    if std::env::var_os(CHILD).is_some() {
        // Wait until the parent has moved us into the cgroups.
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
        let rt = ConfigBuilder::new()
            .level(sprint_core::Level::Standard)
            .read_env(false)
            .build()
            .unwrap();
        println!("WORKERS {}", rt.handle().workers());
        println!("REPORT {}", rt.start_report().memory().join(" | "));
        return;
    }
    let cpu = PathBuf::from("/sys/fs/cgroup/cpu");
    let mem = PathBuf::from("/sys/fs/cgroup/memory");
    if !cpu.join("cpu.cfs_quota_us").exists() || !mem.join("memory.limit_in_bytes").exists() {
        common::skip("cgroup-v1", "no cgroup v1 cpu and memory hierarchies here");
        return;
    }
    let name = format!("sprint-test-{}", std::process::id());
    let (cg_cpu, cg_mem) = (cpu.join(&name), mem.join(&name));
    if let Err(e) = std::fs::create_dir(&cg_cpu) {
        common::skip("root", format!("cannot create {} ({e})", cg_cpu.display()));
        return;
    }
    let mut remove = Remove(vec![cg_cpu.clone()]);
    std::fs::create_dir(&cg_mem).unwrap();
    remove.0.push(cg_mem.clone());
    std::fs::write(cg_cpu.join("cpu.cfs_period_us"), "100000").unwrap();
    std::fs::write(cg_cpu.join("cpu.cfs_quota_us"), "100000").unwrap();
    std::fs::write(cg_mem.join("memory.limit_in_bytes"), "1073741824").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "one_cpu_and_a_memory_limit_give_one_worker_and_the_budget",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    std::fs::write(cg_cpu.join("cgroup.procs"), &pid).unwrap();
    std::fs::write(cg_mem.join("cgroup.procs"), &pid).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("WORKERS 1\n"), "{stdout}");
    assert!(stdout.contains("cgroup CPU quota 1.00 CPUs"), "{stdout}");
    assert!(
        stdout.contains("(75 % of the cgroup limit 1024 MiB"),
        "the budget comes from the memory limit: {stdout}"
    );
    drop(remove);
    assert!(!cg_cpu.exists() && !cg_mem.exists());
}
