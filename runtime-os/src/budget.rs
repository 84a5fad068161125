//! Reading the memory budget's inputs from this machine: RAM from
//! /proc/meminfo and the cgroup memory limit (cgroup v2 `memory.max`, or
//! v1 `memory.limit_in_bytes`), the tightest over the cgroup's ancestors.

use sprint_alloc::budget::{compute, Budget};
use std::path::{Path, PathBuf};

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
                    "sprint-os-{}-{}",
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
