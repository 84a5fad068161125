//! The system profile of each level (tuned's profile), and the one list
//! of files the tuner may write: `apply` and `restore` refuse any other
//! path, so that a journal cannot make `sprint-tune restore` write
//! wherever it names.

use super::SystemSetting;
#[cfg(test)]
use sprint_config::Level;
use sprint_config::{Config, SystemProfile};
use std::path::{Component, Path, PathBuf};

/// The sysctls a profile may change, by name.
const SYSCTLS: &[&str] = &[
    "vm.stat_interval",
    "kernel.timer_migration",
    "net.core.busy_poll",
    "net.core.busy_read",
    "kernel.numa_balancing",
    "vm.nr_hugepages",
];

/// The transparent-huge-page mode.
const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// The file an IRQ's affinity is written to: `/proc/irq/<n>/` + this.
const IRQ_AFFINITY: &str = "smp_affinity_list";

/// Whether `path` is one of the files the tuner changes: a sysctl of
/// [`profile`]'s, the transparent-huge-page mode, or an IRQ's
/// `smp_affinity_list`. Paths are compared component by component, so
/// `..` or a file beside an allowed one is refused.
pub fn is_tunable_path(path: &Path) -> bool {
    if path == Path::new(THP_ENABLED) || SYSCTLS.iter().any(|n| path == sysctl_path(n)) {
        return true;
    }
    let parts: Vec<Component<'_>> = path.components().collect();
    match parts.as_slice() {
        [Component::RootDir, Component::Normal(proc_), Component::Normal(irq), Component::Normal(n), Component::Normal(file)] => {
            *proc_ == "proc"
                && *irq == "irq"
                && *file == IRQ_AFFINITY
                && n.to_str()
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        }
        _ => false,
    }
}

fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

fn sysctl(name: &str, value: impl ToString) -> SystemSetting {
    debug_assert!(SYSCTLS.contains(&name), "{name} is not in SYSCTLS");
    SystemSetting {
        path: sysctl_path(name),
        value: value.to_string(),
    }
}

/// The system profile `config` names (`system_profile`, from the level
/// table unless set): what `apply --system` changes. `worker_cpus` are kept free of interrupts at
/// Turbo when other CPUs can take them.
pub fn profile(config: &Config, worker_cpus: &[usize], allowed: &[usize]) -> Vec<SystemSetting> {
    let mut s = Vec::new();
    if config.system_profile >= SystemProfile::Quiet {
        s.push(sysctl("vm.stat_interval", 10));
        s.push(sysctl("kernel.timer_migration", 0));
    }
    if config.system_profile >= SystemProfile::LowLatency {
        s.push(sysctl("net.core.busy_poll", 50));
        s.push(sysctl("net.core.busy_read", 50));
        s.push(sysctl("kernel.numa_balancing", 0));
        s.push(SystemSetting {
            path: THP_ENABLED.into(),
            value: "madvise".into(),
        });
        if config.huge_pages {
            let pages = config
                .arena_prealloc_bytes
                .saturating_mul(worker_cpus.len().max(1))
                .div_ceil(2 << 20);
            let now: usize = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if pages > now {
                s.push(sysctl("vm.nr_hugepages", pages));
            }
        }
    }
    if config.system_profile >= SystemProfile::Isolated {
        let others: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|c| !worker_cpus.contains(c))
            .collect();
        if !others.is_empty() {
            let list = others
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",");
            if let Ok(irqs) = std::fs::read_dir("/proc/irq") {
                let mut irqs: Vec<PathBuf> = irqs
                    .flatten()
                    .map(|e| e.path().join(IRQ_AFFINITY))
                    .filter(|p| p.exists())
                    .collect();
                irqs.sort();
                for p in irqs {
                    s.push(SystemSetting {
                        path: p,
                        value: list.clone(),
                    });
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_path_is_tunable_and_nothing_else_is() {
        let allowed: Vec<usize> = (0..4).collect();
        for level in Level::ALL {
            let mut c = Config::for_level(level);
            c.huge_pages = true;
            c.arena_prealloc_bytes = usize::MAX;
            for s in profile(&c, &[0], &allowed) {
                assert!(is_tunable_path(&s.path), "{}", s.path.display());
            }
        }
        for ok in [
            "/proc/sys/vm/stat_interval",
            "/proc/sys/vm/nr_hugepages",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "/proc/irq/0/smp_affinity_list",
            "/proc/irq/123/smp_affinity_list",
        ] {
            assert!(is_tunable_path(Path::new(ok)), "{ok}");
        }
        for bad in [
            "/etc/passwd",
            "/proc/sys/vm/swappiness",
            "/proc/sys/vm/../../../etc/passwd",
            "/proc/irq/../irq/1/smp_affinity_list",
            "/proc/irq/1/smp_affinity",
            "/proc/irq/x/smp_affinity_list",
            "/proc/irq//smp_affinity_list",
            "/proc/irq/1/smp_affinity_list/x",
            "proc/sys/vm/stat_interval",
            "/tmp/proc/sys/vm/stat_interval",
        ] {
            assert!(!is_tunable_path(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn the_profile_follows_the_configured_tier_not_the_level() {
        let names = |c: &Config| -> Vec<String> {
            profile(c, &[0], &[0])
                .into_iter()
                .map(|s| s.path.display().to_string())
                .collect()
        };
        let mut basic = Config::for_level(Level::Basic);
        assert!(
            names(&basic).is_empty(),
            "Basic changes nothing machine-wide"
        );
        basic.system_profile = SystemProfile::Quiet;
        assert_eq!(
            names(&basic),
            [
                "/proc/sys/vm/stat_interval",
                "/proc/sys/kernel/timer_migration"
            ]
        );
        let mut turbo = Config::for_level(Level::Turbo);
        assert!(names(&turbo).contains(&"/proc/sys/net/core/busy_poll".to_string()));
        turbo.system_profile = SystemProfile::None;
        assert!(names(&turbo).is_empty(), "an operator can turn it off");
    }
}
