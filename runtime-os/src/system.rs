//! System-wide tuning (opt-in only) with a crash-safe journal, and the
//! machine as the tuner sees it ([`SystemInfo`]).
//!
//! Before each change, the previous value is appended to the journal and
//! fsync'd, so that after a crash or SIGKILL `sprint-tune restore` puts
//! every value back. The journal is locked while a tuner owns it; one from
//! another boot, or a corrupt one, is refused with a clear message. Only
//! the files of the tuner's own list are written ([`is_tunable_path`]);
//! how restore copes with refusals and torn lines is in `journal.rs`.

use crate::tune::{Outcome, ReportLine};
use serde::{Deserialize, Serialize};
use sprint_config::Level;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod journal;
mod profile;

pub use journal::{
    restore_journal, restore_journal_with, RestoreFailure, RestoreOptions, Restored,
};
pub use profile::{is_tunable_path, profile};

/// Where the journal lives unless told otherwise.
pub const DEFAULT_JOURNAL: &str = "/run/sprint/journal";

/// System tuning could not be done or undone.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The journal is held by another tuner.
    #[error("the journal {0} is locked by another tuner (is another sprint-tune or runtime applying system settings?)")]
    Locked(PathBuf),
    /// The journal is from another boot: its values may be stale.
    #[error("the journal {path} was written in another boot (boot id {theirs}, now {ours}); its values may be stale: check and remove it by hand")]
    OtherBoot {
        /// The file.
        path: PathBuf,
        /// Its boot id.
        theirs: String,
        /// This boot's.
        ours: String,
    },
    /// The journal cannot be read.
    #[error("the journal {path} is corrupt at line {line}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The journal is still locked after waiting for the tuner holding it.
    #[error("the journal {path} is still locked by another tuner after waiting {waited_ms} ms (is a sprint-tune or runtime still applying system settings?)")]
    StillLocked {
        /// The file.
        path: PathBuf,
        /// How long restore waited.
        waited_ms: u128,
    },
    /// A path that is not one of the tuner's files (see
    /// [`is_tunable_path`]): nothing was written.
    #[error("{origin} names {}, which is not a file the tuner changes: nothing was written", path.display())]
    NotTunable {
        /// The journal, or `apply`.
        origin: String,
        /// The path.
        path: PathBuf,
    },
    /// Strict mode and a setting could not be applied (everything before
    /// it was put back).
    #[error("strict: {setting} could not be applied: {reason} (nothing was left changed)")]
    Strict {
        /// Which.
        setting: String,
        /// Why.
        reason: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SystemError {
    let what = what.into();
    move |source| SystemError::Io { what, source }
}

/// This boot's id.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The journal's first line: who wrote it, in which boot.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    boot_id: String,
    pid: u32,
    level: String,
}

/// One journal line after the header: a file and the value it held
/// before the tuner changed it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    path: PathBuf,
    old: String,
}

/// One system setting: a file under /proc/sys or /sys and the value a
/// level wants in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSetting {
    /// The file.
    pub path: PathBuf,
    /// The value to write.
    pub value: String,
}

/// The value a file holds, as the kernel shows it (THP's `[madvise]`
/// selection reduced to the word).
pub fn current(path: &Path) -> io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let text = text.trim();
    if let Some((_, rest)) = text.split_once('[') {
        if let Some((word, _)) = rest.split_once(']') {
            return Ok(word.to_string());
        }
    }
    Ok(text.to_string())
}

/// An applied system profile: the journal is held; drop or
/// [`restore`](Self::restore) puts every value back and removes it.
#[derive(Debug)]
pub struct SystemGuard {
    journal: PathBuf,
    file: Option<File>,
    applied: Vec<(PathBuf, String)>,
    /// What was done.
    pub report: Vec<ReportLine>,
}

/// An exclusive lock on the journal (flock on Linux), or `Locked` if
/// another tuner holds it.
fn lock(file: &File, path: &Path) -> Result<(), SystemError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(SystemError::Locked(path.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(io_err(format!("locking the journal {}", path.display()))(e))
        }
    }
}

fn append(file: &mut File, line: &str, path: &Path) -> Result<(), SystemError> {
    file.write_all(line.as_bytes())
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|_| file.sync_all())
        .map_err(io_err(format!("writing the journal {}", path.display())))
}

/// Applies `settings`, journalling each old value first. A journal left
/// by a crash must be restored first (the error says so).
pub fn apply(
    settings: &[SystemSetting],
    level: Level,
    journal: &Path,
    strict: bool,
) -> Result<SystemGuard, SystemError> {
    if let Some(s) = settings.iter().find(|s| !is_tunable_path(&s.path)) {
        return Err(SystemError::NotTunable {
            origin: "apply".into(),
            path: s.path.clone(),
        });
    }
    if !cfg!(target_os = "linux") {
        // sysctls, /sys files and IRQ affinity are Linux's: report each
        // setting unsupported and journal nothing.
        let mut report = Vec::new();
        for s in settings {
            let name = s.path.display().to_string();
            let reason = "a Linux system setting; not available on this platform".to_string();
            if strict {
                return Err(SystemError::Strict {
                    setting: name,
                    reason,
                });
            }
            report.push(line(&name, Outcome::Unsupported { reason }));
        }
        return Ok(SystemGuard {
            journal: journal.to_path_buf(),
            file: None,
            applied: Vec::new(),
            report,
        });
    }
    if let Some(dir) = journal.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(journal)
        .map_err(io_err(format!("opening the journal {}", journal.display())))?;
    lock(&file, journal)?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) > 0 {
        return Err(SystemError::Corrupt {
            path: journal.to_path_buf(),
            line: 1,
            why: "a journal from an earlier run is still there: run `sprint-tune restore` first"
                .into(),
        });
    }
    let header = Header {
        boot_id: boot_id(),
        pid: std::process::id(),
        level: level.to_string(),
    };
    append(
        &mut file,
        &serde_json::to_string(&header).unwrap_or_default(),
        journal,
    )?;
    let mut guard = SystemGuard {
        journal: journal.to_path_buf(),
        file: Some(file),
        applied: Vec::new(),
        report: Vec::new(),
    };
    for s in settings {
        let name = s.path.display().to_string();
        let old = match current(&s.path) {
            Ok(v) => v,
            Err(e) => {
                guard.skip(&name, format!("cannot read it: {e}"), strict)?;
                continue;
            }
        };
        if old == s.value {
            guard
                .report
                .push(line(&name, Outcome::Unchanged { value: old }));
            continue;
        }
        let rec = serde_json::to_string(&Record {
            path: s.path.clone(),
            old: old.clone(),
        })
        .unwrap_or_default();
        if let Some(f) = guard.file.as_mut() {
            append(f, &rec, journal)?;
        }
        match std::fs::write(&s.path, &s.value) {
            Ok(()) => {
                guard.applied.push((s.path.clone(), old.clone()));
                guard.report.push(line(
                    &name,
                    Outcome::Applied {
                        from: old,
                        to: s.value.clone(),
                    },
                ));
            }
            Err(e) => guard.skip(
                &name,
                format!("the kernel refused {:?}: {e}", s.value),
                strict,
            )?,
        }
    }
    Ok(guard)
}

fn line(name: &str, outcome: Outcome) -> ReportLine {
    ReportLine {
        scope: "system".into(),
        setting: name.to_string().into(),
        outcome,
    }
}

impl SystemGuard {
    fn skip(&mut self, name: &str, reason: String, strict: bool) -> Result<(), SystemError> {
        if strict {
            self.put_back();
            return Err(SystemError::Strict {
                setting: name.into(),
                reason,
            });
        }
        self.report.push(line(name, Outcome::Skipped { reason }));
        Ok(())
    }

    fn put_back(&mut self) {
        for (path, old) in self.applied.drain(..).rev() {
            if let Err(e) = std::fs::write(&path, &old) {
                tracing::error!(path = %path.display(), error = %e, "could not restore a system setting");
            }
        }
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.journal);
        }
    }

    /// Puts every value back and removes the journal.
    pub fn restore(mut self) {
        self.put_back();
    }

    /// Leaves the settings and the journal as they are (for
    /// `sprint-tune apply`, whose settings outlive it until `restore`).
    pub fn keep(mut self) {
        self.applied.clear();
        self.file = None;
    }
}

impl Drop for SystemGuard {
    fn drop(&mut self) {
        self.put_back();
    }
}

/// The machine as the tuner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SystemInfo {
    /// `uname -r`.
    pub kernel: String,
    /// The topology, in words.
    pub topology: String,
    /// NUMA nodes.
    pub numa_nodes: usize,
    /// CPUs this process may run on.
    pub allowed_cpus: Vec<usize>,
    /// isolcpus / nohz_full CPUs.
    pub isolated_cpus: Vec<usize>,
    /// The cgroup CPU quota, in CPUs.
    pub cgroup_cpu_quota: Option<f64>,
    /// The cgroup memory limit, bytes.
    pub cgroup_memory_limit: Option<u64>,
    /// RAM, bytes.
    pub ram: u64,
    /// CAP_SYS_NICE in the effective set.
    pub cap_sys_nice: bool,
    /// CAP_IPC_LOCK in the effective set.
    pub cap_ipc_lock: bool,
    /// CAP_SYS_RESOURCE in the effective set.
    pub cap_sys_resource: bool,
    /// RLIMIT_MEMLOCK (soft, hard); `u64::MAX` is unlimited.
    pub rlimit_memlock: (u64, u64),
    /// The transparent-huge-page mode.
    pub thp_mode: String,
    /// kernel.sched_rt_runtime_us and sched_rt_period_us (-1: throttling
    /// off).
    pub rt_throttle: (i64, i64),
    /// Free explicit huge pages.
    pub huge_pages_free: usize,
}

/// A capability by name: the `caps` value on Linux, its name elsewhere.
macro_rules! capability {
    ($c:ident) => {{
        #[cfg(target_os = "linux")]
        let c = caps::Capability::$c;
        #[cfg(not(target_os = "linux"))]
        let c = stringify!($c);
        c
    }};
}

impl SystemInfo {
    /// Reads it all.
    pub fn detect() -> SystemInfo {
        let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let root = Path::new("/sys/fs/cgroup");
        let topo = crate::topology::MachineTopology::detect();
        #[cfg(target_os = "linux")]
        let cap = |c| caps::has_cap(None, caps::CapSet::Effective, c).unwrap_or(false);
        // Capabilities are Linux's: elsewhere none is held.
        #[cfg(not(target_os = "linux"))]
        let cap = |_: &str| false;
        #[cfg(target_os = "linux")]
        let rlimit_memlock = crate::thread::memlock();
        // Not read here: nothing bounds locking but the working set.
        #[cfg(not(target_os = "linux"))]
        let rlimit_memlock = (u64::MAX, u64::MAX);
        #[cfg(target_os = "linux")]
        let rt_throttle = crate::thread::rt_throttling().unwrap_or((0, 0));
        #[cfg(not(target_os = "linux"))]
        let rt_throttle = (0, 0);
        SystemInfo {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            topology: topo
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|e| e.to_string()),
            numa_nodes: topo
                .as_ref()
                .map(|t| t.numa_nodes.len().max(1))
                .unwrap_or(1),
            allowed_cpus: crate::placement::allowed_cpus().unwrap_or_default(),
            isolated_cpus: crate::placement::isolated_cpus(),
            cgroup_cpu_quota: crate::cgroup::cpu_quota(root, &cg).map(|q| q.0),
            cgroup_memory_limit: crate::cgroup::memory_limit(root, &cg).map(|m| m.0),
            ram: crate::budget::detect(100).map(|b| b.ram).unwrap_or(0),
            cap_sys_nice: cap(capability!(CAP_SYS_NICE)),
            cap_ipc_lock: cap(capability!(CAP_IPC_LOCK)),
            cap_sys_resource: cap(capability!(CAP_SYS_RESOURCE)),
            rlimit_memlock,
            thp_mode: current(Path::new("/sys/kernel/mm/transparent_hugepage/enabled"))
                .unwrap_or_else(|_| "unknown".into()),
            rt_throttle,
            huge_pages_free: sprint_alloc::arena::free_huge_pages(),
        }
    }

    /// The highest level this machine can apply fully, and what the next
    /// one up is missing.
    pub fn best_level(&self) -> (Level, Vec<String>) {
        let mut missing = Vec::new();
        let mut best = Level::Aggressive;
        if !self.cap_sys_nice {
            missing.push("CAP_SYS_NICE (the real-time class of Enterprise and Turbo)".into());
        }
        if !self.cap_ipc_lock && self.rlimit_memlock.0 != u64::MAX {
            missing.push(format!(
                "CAP_IPC_LOCK or an unlimited RLIMIT_MEMLOCK (now {} KiB) to lock memory",
                self.rlimit_memlock.0 / 1024
            ));
        }
        if self.huge_pages_free == 0 {
            missing.push("explicit huge pages reserved (vm.nr_hugepages)".into());
        }
        if missing.is_empty() {
            best = Level::Enterprise;
            if self.allowed_cpus.len() < 2 {
                missing.push(
                    "a second CPU: Turbo busy-polls one and needs another for the system".into(),
                );
            } else if self.isolated_cpus.is_empty() {
                missing.push("isolated CPUs (isolcpus, nohz_full) for Turbo's workers".into());
            } else {
                best = Level::Turbo;
            }
        }
        (best, missing)
    }
}

/// Whether this process may create an io_uring: `kernel.io_uring_disabled`
/// and one `io_uring_setup` of a tiny ring, closed at once. (sprint-io's
/// probe says which features the driver then uses.)
pub fn uring_usable() -> io::Result<()> {
    if let Ok(v) = current(Path::new("/proc/sys/kernel/io_uring_disabled")) {
        if v.trim() == "2" {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "io_uring is disabled for every process (kernel.io_uring_disabled = 2)",
            ));
        }
    }
    #[cfg(target_os = "linux")]
    {
        // io_uring_params is 120 bytes of plain integers; zero asks for
        // the defaults.
        let mut params = [0u8; 120];
        // SAFETY: io_uring_setup with 1 entry writes at most the 120-byte
        // parameter block, which outlives the call.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is the ring just made, closed once.
        unsafe { libc::close(fd as libc::c_int) };
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "io_uring is Linux's",
    ))
}
