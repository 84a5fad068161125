//! A real fallback: a child process installs a seccomp filter that makes
//! io_uring_setup fail with EPERM, as a container runtime's default
//! profile does. The runtime must start on epoll and say why; forcing
//! io_uring there (SPRINT_IO=uring, or strict) must fail with a clear
//! error. The filter cannot be removed, hence the child process.

mod common;

use sprint_core::Level;
use std::process::Command;

const CHILD: &str = "SECCOMP_CHILD_OF_THE_SPRINT_IO_TESTS";

fn deny_io_uring_setup() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .expect("a seccompiler architecture");
    let filter = SeccompFilter::new(
        [(libc::SYS_io_uring_setup, vec![])].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .expect("filter");
    let prog: BpfProgram = filter.try_into().expect("bpf");
    seccompiler::apply_filter(&prog).expect("install the seccomp filter");
}

fn builder(level: Level) -> sprint::Builder {
    sprint::Builder::new().level(level).workers(1)
}

fn child() {
    deny_io_uring_setup();
    // The preset asks for io_uring (Standard): fall back, with the reason.
    let rt = builder(Level::Standard).build().expect("starts on epoll");
    let report = rt.start_report().drivers().join("\n");
    println!("REPORT {report}");
    assert_eq!(rt.handle().driver(0).unwrap().1, "epoll");
    drop(rt);
    // Strict: an error.
    let err = builder(Level::Standard)
        .configure(|c| c.strict = true)
        .build()
        .unwrap_err();
    println!("STRICT {err:#}");
    // Forced through the environment: an error, never a silent epoll.
    std::env::set_var("SPRINT_IO", "uring");
    let err = builder(Level::Basic).build().unwrap_err();
    println!("FORCED {err:#}");
}

#[test]
fn seccomp_denied_io_uring_falls_back_and_forcing_it_fails() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    if !common::uring() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "seccomp_denied_io_uring_falls_back_and_forcing_it_fails",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env_remove("SPRINT_IO")
        .env_remove("SPRINT_LEVEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = |tag: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(tag).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {tag} line in:\n{stdout}\n{stderr}"))
            .to_string()
    };
    let report = line("REPORT ");
    assert!(report.starts_with("epoll"), "{report}");
    assert!(
        report.contains("fell back from io_uring") && report.contains("EPERM"),
        "the report says why: {report}"
    );
    let strict = line("STRICT ");
    assert!(
        strict.contains("strict") && strict.contains("EPERM"),
        "{strict}"
    );
    let forced = line("FORCED ");
    assert!(
        forced.contains("forced (environment SPRINT_IO)")
            && forced.contains("io_uring_setup was refused (EPERM)"),
        "{forced}"
    );
}
