//! The process's cgroup limits, v1 and v2: the memory limit and the CPU
//! quota, each the tightest over the cgroup and every ancestor.
//!
//! /proc/self/cgroup names paths from the hierarchy's root, but a
//! container often mounts only its own subtree: the path is matched
//! against the mount by dropping leading components until it exists (and
//! the mount's root stands for the rest).

use std::path::{Path, PathBuf};

/// One hierarchy's path for this process: v2 (`0::/p`) or the v1 line
/// naming `controller`.
fn path_for(proc_self_cgroup: &str, controller: Option<&str>) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            None => controllers.is_empty(),
            Some(c) => controllers.split(',').any(|x| x == c),
        };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

/// The directory of `path` under `mount`, and each ancestor up to the
/// mount: leaf first.
pub fn dirs(mount: &Path, path: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut leaf = None;
    for skip in 0..=parts.len() {
        let d = parts[skip..]
            .iter()
            .fold(mount.to_path_buf(), |d, p| d.join(p));
        if d.is_dir() {
            leaf = Some(d);
            break;
        }
    }
    let Some(leaf) = leaf else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut d = leaf.as_path();
    loop {
        out.push(d.to_path_buf());
        if d == mount {
            break;
        }
        match d.parent() {
            Some(p) if p.starts_with(mount) => d = p,
            _ => break,
        }
    }
    out
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The tightest memory limit over the process's cgroup and its
/// ancestors, with the file it came from; `root` is the cgroup mount
/// point (`/sys/fs/cgroup`).
pub fn memory_limit(root: &Path, proc_self_cgroup: &str) -> Option<(u64, PathBuf)> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut consider = |v: u64, f: PathBuf| {
        // v1 reports "unlimited" as a page-rounded i64::MAX.
        if v < (1u64 << 62) && best.as_ref().is_none_or(|(b, _)| v < *b) {
            best = Some((v, f));
        }
    };
    let v1 = root.join("memory");
    if v1.join("memory.limit_in_bytes").exists() {
        let path = path_for(proc_self_cgroup, Some("memory")).unwrap_or_default();
        for d in dirs(&v1, &path) {
            let f = d.join("memory.limit_in_bytes");
            if let Some(v) = read(&f).and_then(|t| t.parse().ok()) {
                consider(v, f);
            }
        }
        return best;
    }
    if let Some(path) = path_for(proc_self_cgroup, None) {
        for d in dirs(root, &path) {
            let f = d.join("memory.max");
            if let Some(v) = read(&f).and_then(|t| t.parse().ok()) {
                consider(v, f);
            }
        }
    }
    best
}

/// The tightest CPU quota, in CPUs (quota / period), over the process's
/// cgroup and its ancestors: v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`,
/// v2 `cpu.max`.
pub fn cpu_quota(root: &Path, proc_self_cgroup: &str) -> Option<(f64, PathBuf)> {
    let mut best: Option<(f64, PathBuf)> = None;
    let mut consider = |v: f64, f: PathBuf| {
        if v > 0.0 && best.as_ref().is_none_or(|(b, _)| v < *b) {
            best = Some((v, f));
        }
    };
    let v1 = ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
        .iter()
        .map(|m| root.join(m))
        .find(|m| m.join("cpu.cfs_quota_us").exists());
    if let Some(v1) = v1 {
        let path = path_for(proc_self_cgroup, Some("cpu")).unwrap_or_default();
        for d in dirs(&v1, &path) {
            let q: Option<i64> = read(&d.join("cpu.cfs_quota_us")).and_then(|t| t.parse().ok());
            let p: Option<i64> = read(&d.join("cpu.cfs_period_us")).and_then(|t| t.parse().ok());
            if let (Some(q), Some(p)) = (q, p) {
                if q > 0 && p > 0 {
                    consider(q as f64 / p as f64, d.join("cpu.cfs_quota_us"));
                }
            }
        }
        return best;
    }
    if let Some(path) = path_for(proc_self_cgroup, None) {
        for d in dirs(root, &path) {
            let f = d.join("cpu.max");
            let Some(text) = read(&f) else { continue };
            let mut it = text.split_whitespace();
            let (q, p) = (it.next(), it.next().and_then(|p| p.parse::<f64>().ok()));
            if let (Some(q), Some(p)) = (q, p) {
                if q != "max" {
                    if let Ok(q) = q.parse::<f64>() {
                        consider(q / p, f.clone());
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);
    impl Tree {
        fn new(files: &[(&str, &str)]) -> Tree {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "sprint-cgroup-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            for (p, text) in files {
                let f = root.join(p);
                std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                std::fs::write(f, text).unwrap();
            }
            Tree(root)
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn v2_cpu_max_the_tightest_ancestor_wins() {
        // The real v2 format: "$MAX $PERIOD", "max" for none.
        let t = Tree::new(&[
            ("cpu.max", "max 100000\n"),
            ("a/cpu.max", "150000 100000\n"),
            ("a/b/cpu.max", "max 100000\n"),
            ("a/b/memory.max", "max\n"),
            ("a/memory.max", "1073741824\n"),
        ]);
        let q = cpu_quota(&t.0, "0::/a/b\n").unwrap();
        assert_eq!(q.0, 1.5);
        assert!(q.1.ends_with("a/cpu.max"));
        let m = memory_limit(&t.0, "0::/a/b\n").unwrap();
        assert_eq!(m.0, 1 << 30);
    }

    #[test]
    fn v1_quota_and_a_path_mounted_as_a_subtree() {
        // /proc/self/cgroup names /outer/job, but only /job's subtree is
        // mounted: the path is matched by dropping leading components.
        let t = Tree::new(&[
            ("cpu/cpu.cfs_quota_us", "-1\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
            ("cpu/job/cpu.cfs_quota_us", "50000\n"),
            ("cpu/job/cpu.cfs_period_us", "100000\n"),
            ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/job/memory.limit_in_bytes", "536870912\n"),
        ]);
        let cg = "5:cpu,cpuacct:/outer/job\n4:memory:/outer/job\n";
        assert_eq!(cpu_quota(&t.0, cg).unwrap().0, 0.5);
        assert_eq!(memory_limit(&t.0, cg).unwrap().0, 512 << 20);
        assert_eq!(cpu_quota(&t.0, "5:cpu:/\n"), None, "no quota at the root");
    }
}
