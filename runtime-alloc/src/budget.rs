//! The memory budget: a ceiling on all arenas together, as a percentage of
//! the smaller of the machine's RAM and the process's cgroup memory limit
//! (both read by sprint-os and given here).

use std::fmt;
use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_of_ram_and_the_cgroup_limit() {
        let b = compute(16 << 30, Some((4 << 30, PathBuf::from("x"))), 50);
        assert_eq!(b.total, (4u64 << 30) / 100 * 50);
        let b = compute(16 << 30, None, 75);
        assert_eq!(b.total, (16u64 << 30) / 100 * 75);
    }
}
