//! `sprint-tune`: what this machine can do, and its system settings per
//! level, applied with a journal and restored from it (after a crash too).
//!
//! ```text
//! sprint-tune doctor                       # SystemInfo, the best level, what the next needs
//! sprint-tune apply --level turbo --system # system settings, journalled
//! sprint-tune verify --level turbo         # live settings against the level
//! sprint-tune restore                      # every journalled value back
//! ```
//!
//! Exit status: 0 done (verified), 1 `verify` found differences or
//! `restore` could not put every value back (each is named on stderr and
//! kept in the journal), 2 an error before anything was done.
//!
//! Process and thread settings (real-time class, nice, timer slack, locked
//! memory) belong to the runtime, which applies and restores them itself.

use clap::{Parser, Subcommand};
use sprint::config::CpuList;
use sprint::system::{self, SystemInfo, DEFAULT_JOURNAL};
use sprint::{Config, Level};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sprint-tune",
    about = "Sprint's system tuning: doctor, apply, verify, restore"
)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// What this machine offers, the highest level it can fully apply, and
    /// what the next level is missing.
    Doctor,
    /// Applies a level's system settings, journalling every old value.
    Apply {
        /// basic, standard, aggressive, enterprise or turbo.
        #[arg(long)]
        level: Level,
        /// Change system-wide settings (required: they outlive this
        /// command until `restore`).
        #[arg(long)]
        system: bool,
        /// The workers' CPUs (default: the level's plan).
        #[arg(long)]
        cpus: Option<CpuList>,
        /// The journal file.
        #[arg(long, default_value = DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// Fail on the first setting that cannot be applied, leaving
        /// nothing changed.
        #[arg(long)]
        strict: bool,
    },
    /// Compares the live system settings with a level's.
    Verify {
        /// The level.
        #[arg(long)]
        level: Level,
        /// The workers' CPUs (default: the level's plan).
        #[arg(long)]
        cpus: Option<CpuList>,
    },
    /// Puts back every value the journal recorded, and removes it. A
    /// value the kernel refuses is reported and kept in the journal (exit
    /// status 1); the rest are put back all the same.
    Restore {
        /// The journal file.
        #[arg(long, default_value = DEFAULT_JOURNAL)]
        journal: PathBuf,
        /// How long to wait for a tuner that still holds the journal (one
        /// shutting down), in ms.
        #[arg(long, default_value_t = 5000)]
        lock_wait_ms: u64,
    },
}

fn plan(level: Level, cpus: Option<CpuList>) -> Result<(Config, Vec<usize>, Vec<usize>), String> {
    let mut cfg = Config::for_level(level);
    cfg.cpus = cpus;
    cfg.validate().map_err(|e| e.to_string())?;
    let allowed = sprint::topology::allowed_cpus().map_err(|e| e.to_string())?;
    let plan = sprint::Plan::new(&cfg, &allowed, &sprint::topology::isolated_cpus());
    let workers = plan.workers.iter().map(|w| w.cpu).collect();
    Ok((cfg, workers, allowed))
}

fn run(cli: Cli) -> Result<bool, String> {
    match cli.cmd {
        Cmd::Doctor => {
            let info = SystemInfo::detect();
            let (best, missing) = info.best_level();
            let uring = sprint::net_driver_probe();
            if cli.json {
                let v = serde_json::json!({
                    "system": info,
                    "io_uring": uring.as_ref().map(|_| "available".to_string()).unwrap_or_else(|e| e.to_string()),
                    "best_level": best.to_string(),
                    "missing_for_next": missing,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
            } else {
                println!("kernel {}; {}", info.kernel, info.topology);
                println!(
                    "allowed CPUs {:?}, isolated {:?}",
                    info.allowed_cpus, info.isolated_cpus
                );
                println!(
                    "cgroup CPU quota {}, memory limit {}",
                    info.cgroup_cpu_quota
                        .map_or("none".into(), |q| format!("{q:.2} CPUs")),
                    info.cgroup_memory_limit
                        .map_or("none".into(), |m| format!("{} MiB", m >> 20))
                );
                println!(
                    "CAP_SYS_NICE {}, CAP_IPC_LOCK {}, CAP_SYS_RESOURCE {}; RLIMIT_MEMLOCK soft {} KiB",
                    info.cap_sys_nice,
                    info.cap_ipc_lock,
                    info.cap_sys_resource,
                    info.rlimit_memlock.0 / 1024
                );
                println!(
                    "THP {}; RT throttling {} us of {} us; {} free huge pages",
                    info.thp_mode, info.rt_throttle.0, info.rt_throttle.1, info.huge_pages_free
                );
                println!(
                    "io_uring: {}",
                    uring
                        .map(|_| "available".to_string())
                        .unwrap_or_else(|e| e.to_string())
                );
                println!("highest level this machine applies fully: {best}");
                for m in missing {
                    println!("  the next level needs: {m}");
                }
            }
            Ok(true)
        }
        Cmd::Apply {
            level,
            system,
            cpus,
            journal,
            strict,
        } => {
            if !system {
                return Err("apply changes system-wide settings only, with --system (process and thread settings are the runtime's: it applies and restores them itself)".into());
            }
            let (cfg, workers, allowed) = plan(level, cpus)?;
            let settings = system::profile(&cfg, &workers, &allowed);
            let guard =
                system::apply(&settings, level, &journal, strict).map_err(|e| e.to_string())?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&guard.report).map_err(|e| e.to_string())?
                );
            } else {
                for l in &guard.report {
                    println!("{l}");
                }
                println!(
                    "journal: {} (`sprint-tune restore` puts it all back)",
                    journal.display()
                );
            }
            guard.keep();
            Ok(true)
        }
        Cmd::Verify { level, cpus } => {
            let (cfg, workers, allowed) = plan(level, cpus)?;
            let mut rows = Vec::new();
            let mut all = true;
            for s in system::profile(&cfg, &workers, &allowed) {
                let live = system::current(&s.path).unwrap_or_else(|e| format!("unreadable: {e}"));
                let ok = live == s.value;
                all &= ok;
                rows.push(serde_json::json!({
                    "setting": s.path, "want": s.value, "live": live, "ok": ok
                }));
            }
            if cli.json {
                let v =
                    serde_json::json!({"level": level.to_string(), "ok": all, "settings": rows});
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
            } else {
                for r in &rows {
                    println!(
                        "{} {}: want {}, live {}",
                        if r["ok"].as_bool() == Some(true) {
                            "ok  "
                        } else {
                            "DIFF"
                        },
                        r["setting"].as_str().unwrap_or(""),
                        r["want"].as_str().unwrap_or(""),
                        r["live"].as_str().unwrap_or("")
                    );
                }
                println!("{level}: {}", if all { "verified" } else { "differs" });
            }
            Ok(all)
        }
        Cmd::Restore {
            journal,
            lock_wait_ms,
        } => {
            let now = system::RestoreOptions {
                lock_wait: Duration::ZERO,
            };
            let done = match system::restore_journal_with(&journal, &now) {
                Err(system::SystemError::StillLocked { .. }) => {
                    eprintln!(
                        "sprint-tune: the journal {} is locked by another tuner: waiting up to {lock_wait_ms} ms for it",
                        journal.display()
                    );
                    let wait = system::RestoreOptions {
                        lock_wait: Duration::from_millis(lock_wait_ms),
                    };
                    system::restore_journal_with(&journal, &wait)
                }
                other => other,
            }
            .map_err(|e| e.to_string())?;
            for w in &done.warnings {
                eprintln!("sprint-tune: warning: {w}");
            }
            for f in &done.failed {
                eprintln!(
                    "sprint-tune: could not restore {} = {:?}: {}",
                    f.path.display(),
                    f.value,
                    f.error
                );
            }
            if cli.json {
                let v = serde_json::json!({
                    "restored": done.restored.iter()
                        .map(|(p, v)| serde_json::json!({"setting": p, "restored": v}))
                        .collect::<Vec<_>>(),
                    "failed": done.failed.iter()
                        .map(|f| serde_json::json!({
                            "setting": f.path,
                            "value": f.value,
                            "error": f.error.to_string(),
                            "errno": f.error.raw_os_error(),
                        }))
                        .collect::<Vec<_>>(),
                    "warnings": done.warnings,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
                );
            } else if done.restored.is_empty() && done.failed.is_empty() {
                println!("nothing to restore from {}", journal.display());
            } else {
                for (p, v) in &done.restored {
                    println!("restored {} = {v}", p.display());
                }
            }
            if !done.failed.is_empty() {
                eprintln!(
                    "sprint-tune: {} of {} settings could not be put back; they stay in the journal {} for `sprint-tune restore` to try again",
                    done.failed.len(),
                    done.failed.len() + done.restored.len(),
                    journal.display()
                );
            }
            Ok(done.failed.is_empty())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sprint-tune: {e}");
            ExitCode::from(2)
        }
    }
}
