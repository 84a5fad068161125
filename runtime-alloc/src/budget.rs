//! The memory budget: a ceiling on all arenas together, as a percentage of
//! the smaller of the machine's RAM and the process's cgroup memory limit
//! (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`).

use std::fmt;
use std::path::{Path, PathBuf};

/// What the budget was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// RAM, from /proc/meminfo.
    pub ram: u64,
    /// The cgroup memory limit, if one is set (and where it was read).
    pub cgroup_limit: Option<(u64, PathBuf)>,
    /// The percentage of the smaller that arenas may use.
    pub percent: u8,
    /// The ceiling on all arenas, in bytes.
    pub total: u64,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MiB ({} % of ", self.total >> 20, self.percent)?;
        match &self.cgroup_limit {
            Some((l, p)) if *l < self.ram => {
                write!(f, "the cgroup limit {} MiB, {})", l >> 20, p.display())
            }
            _ => write!(f, "RAM {} MiB)", self.ram >> 20),
        }
    }
}

/// Reads RAM and the cgroup limit of this process.
pub fn detect(percent: u8) -> std::io::Result<Budget> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let ram = parse_meminfo_total(&meminfo).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no MemTotal line in /proc/meminfo",
        )
    })?;
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let limit = cgroup_limit(Path::new("/sys/fs/cgroup"), &cgroups);
    Ok(compute(ram, limit, percent))
}

/// The budget from RAM, a cgroup limit and a percentage.
pub fn compute(ram: u64, cgroup_limit: Option<(u64, PathBuf)>, percent: u8) -> Budget {
    let base = match &cgroup_limit {
        Some((l, _)) => ram.min(*l),
        None => ram,
    };
    Budget {
        ram,
        cgroup_limit,
        percent,
        total: base / 100 * percent as u64,
    }
}

/// `MemTotal` in bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit of the cgroup named in `proc_self_cgroup` (the text of
/// /proc/self/cgroup) under the cgroup mount `root`: the tightest of v1's
/// `memory.limit_in_bytes` or v2's `memory.max` over the cgroup and its
/// ancestors (see [`crate::cgroup`]).
pub fn cgroup_limit(root: &Path, proc_self_cgroup: &str) -> Option<(u64, PathBuf)> {
    crate::cgroup::memory_limit(root, proc_self_cgroup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_in_bytes() {
        let m = "MemTotal:       24684092 kB\nMemFree: 1 kB\n";
        assert_eq!(parse_meminfo_total(m), Some(24684092 * 1024));
        assert_eq!(parse_meminfo_total("nothing"), None);
    }

    #[test]
    fn the_smaller_of_ram_and_the_cgroup_limit() {
        let b = compute(16 << 30, Some((4 << 30, PathBuf::from("x"))), 50);
        assert_eq!(b.total, (4u64 << 30) / 100 * 50);
        let b = compute(16 << 30, None, 75);
        assert_eq!(b.total, (16u64 << 30) / 100 * 75);
    }

    fn tree(files: &[(&str, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (p, text) in files {
            let path = d.0.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        d
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "sprint-alloc-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn cgroup_v2_memory_max() {
        let d = tree(&[("app/memory.max", "2147483648\n")]);
        let l = cgroup_limit(&d.0, "0::/app\n").unwrap();
        assert_eq!(l.0, 2 << 30);
        let d = tree(&[("app/memory.max", "max\n")]);
        assert_eq!(cgroup_limit(&d.0, "0::/app\n"), None);
    }

    #[test]
    fn cgroup_v1_limit_in_bytes_with_root_fallback() {
        let d = tree(&[
            ("memory/memory.limit_in_bytes", "1073741824\n"),
            ("memory/job/memory.limit_in_bytes", "536870912\n"),
        ]);
        let l = cgroup_limit(&d.0, "4:memory:/job\n0::/\n").unwrap();
        assert_eq!(l.0, 512 << 20);
        // The named path is not mounted here: the mount's root.
        let l = cgroup_limit(&d.0, "4:memory:/elsewhere\n").unwrap();
        assert_eq!(l.0, 1 << 30);
        let d = tree(&[("memory/memory.limit_in_bytes", "9223372036854771712\n")]);
        assert_eq!(cgroup_limit(&d.0, "4:memory:/\n"), None, "v1's unlimited");
    }
}
