use serde::{Deserialize, Serialize};

/// How many CPU ids to accept when none can be read from the kernel: the
/// largest `NR_CPUS` a mainline kernel can be built with.
pub const FALLBACK_POSSIBLE_CPUS: usize = 8192;

/// How many CPU ids this machine can have: one more than the highest in
/// /sys/devices/system/cpu/possible (CPUs that may ever come online), or
/// [`FALLBACK_POSSIBLE_CPUS`] where that cannot be read. CPU lists are
/// bounded by it while they are read, before they are expanded. (The one
/// fact about the machine this crate reads itself: parsing needs it.)
pub fn possible_cpus() -> usize {
    static POSSIBLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *POSSIBLE.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| possible_from(&s))
            .unwrap_or(FALLBACK_POSSIBLE_CPUS)
    })
}

/// The bound a `possible` file gives: its highest id plus one (`0-1` is 2).
fn possible_from(text: &str) -> Option<usize> {
    let last = text.trim().rsplit([',', '-']).next()?;
    last.parse::<usize>().ok()?.checked_add(1)
}
use std::fmt;
use std::str::FromStr;

/// A list of CPU ids, written like the kernel's lists: `0-3,6,8-9`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CpuListRepr", into = "String")]
pub struct CpuList(Vec<usize>);

#[derive(Deserialize)]
#[serde(untagged)]
enum CpuListRepr {
    Text(String),
    Ids(Vec<usize>),
}

impl TryFrom<CpuListRepr> for CpuList {
    type Error = CpuListError;

    fn try_from(r: CpuListRepr) -> Result<CpuList, CpuListError> {
        match r {
            CpuListRepr::Text(s) => s.parse(),
            CpuListRepr::Ids(v) => CpuList::checked(v, possible_cpus()),
        }
    }
}

/// A CPU list that cannot be read, or names CPUs this machine cannot have.
/// Lists are checked against the machine's possible CPUs while they are
/// read, before any range is expanded: `0-4000000000` costs nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// Nothing was given.
    #[error("the CPU list is empty")]
    Empty,
    /// A part is not a CPU number or range.
    #[error("{text:?} in {part:?} is not a CPU number")]
    NotANumber {
        /// The part of the list (`3-x`).
        part: String,
        /// The text that is not a number.
        text: String,
    },
    /// A range whose start is above its end.
    #[error("the range {part:?} runs backwards")]
    Backwards {
        /// The range.
        part: String,
    },
    /// A CPU id at or above the number of CPUs this machine can have
    /// (/sys/devices/system/cpu/possible).
    #[error(
        "CPU {cpu} in {part:?} is beyond this machine's possible CPUs: the limit is {limit} (CPUs 0-{})",
        limit.saturating_sub(1)
    )]
    BeyondPossible {
        /// The part of the list that names it.
        part: String,
        /// The CPU id as written.
        cpu: String,
        /// How many CPU ids the machine can have.
        limit: usize,
    },
    /// A CPU named twice.
    #[error("CPU {cpu} is listed twice")]
    Repeated {
        /// The CPU.
        cpu: usize,
    },
}

impl CpuList {
    /// A list of the given ids, in that order.
    pub fn new(ids: Vec<usize>) -> CpuList {
        CpuList(ids)
    }

    /// The ids.
    pub fn ids(&self) -> &[usize] {
        &self.0
    }

    /// Reads a kernel-style list, refusing any id at or above `limit`
    /// before a range is expanded, and any id named twice: the result
    /// holds at most `limit` ids.
    pub fn parse_within(s: &str, limit: usize) -> Result<CpuList, CpuListError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(CpuListError::Empty);
        }
        let mut seen = vec![false; limit];
        let mut out = Vec::new();
        for part in t.split(',') {
            let part = part.trim();
            // A number as written (saturating: any run of digits is a
            // number, however long), then bounded by the limit.
            let num = |x: &str| -> Result<(u128, String), CpuListError> {
                let x = x.trim();
                if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CpuListError::NotANumber {
                        part: part.to_string(),
                        text: x.to_string(),
                    });
                }
                let n = x.bytes().fold(0u128, |n, d| {
                    n.saturating_mul(10).saturating_add(u128::from(d - b'0'))
                });
                Ok((n, x.to_string()))
            };
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let a = num(part)?;
                    (a.clone(), a)
                }
            };
            if a.0 > b.0 {
                return Err(CpuListError::Backwards {
                    part: part.to_string(),
                });
            }
            let (a, b) = match usize::try_from(b.0) {
                Ok(top) if top < limit => (a.0 as usize, top),
                _ => {
                    return Err(CpuListError::BeyondPossible {
                        part: part.to_string(),
                        cpu: b.1,
                        limit,
                    })
                }
            };
            for (cpu, seen) in seen.iter_mut().enumerate().take(b + 1).skip(a) {
                if std::mem::replace(seen, true) {
                    return Err(CpuListError::Repeated { cpu });
                }
                out.push(cpu);
            }
        }
        Ok(CpuList(out))
    }

    /// `ids` as a list, checked as [`CpuList::parse_within`] checks text.
    fn checked(ids: Vec<usize>, limit: usize) -> Result<CpuList, CpuListError> {
        let mut seen = vec![false; limit];
        for &cpu in &ids {
            if cpu >= limit {
                return Err(CpuListError::BeyondPossible {
                    part: cpu.to_string(),
                    cpu: cpu.to_string(),
                    limit,
                });
            }
            if std::mem::replace(&mut seen[cpu], true) {
                return Err(CpuListError::Repeated { cpu });
            }
        }
        Ok(CpuList(ids))
    }
}

impl FromStr for CpuList {
    type Err = CpuListError;

    /// [`CpuList::parse_within`] this machine's possible CPUs.
    fn from_str(s: &str) -> Result<CpuList, CpuListError> {
        CpuList::parse_within(s, possible_cpus())
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let v = &self.0;
        let mut first = true;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                j += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if j > i {
                write!(f, "{}-{}", v[i], v[j])?;
            } else {
                write!(f, "{}", v[i])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

impl From<CpuList> for String {
    fn from(c: CpuList) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_possible_bound_is_the_highest_id_plus_one() {
        assert_eq!(possible_from("0-1\n"), Some(2));
        assert_eq!(possible_from("0"), Some(1));
        assert_eq!(possible_from("0-3,8-11"), Some(12));
        assert_eq!(possible_from(""), None);
        assert_eq!(possible_from("0-18446744073709551615"), None);
    }

    #[test]
    fn parses_ranges_and_singles() {
        let c = CpuList::parse_within("0-2, 5,7-8", 16).unwrap();
        assert_eq!(c.ids(), &[0, 1, 2, 5, 7, 8]);
        assert_eq!(c.to_string(), "0-2,5,7-8");
    }

    #[test]
    fn rejects_malformed_lists() {
        for bad in ["", "a", "1-", "3-1", "1,,2", "-4", "+1", "0-+1"] {
            assert!(
                CpuList::parse_within(bad, 8).is_err(),
                "{bad:?} should fail"
            );
        }
    }

    #[test]
    fn ranges_are_bounded_before_they_are_expanded() {
        for (text, cpu) in [
            ("0-4000000000", "4000000000"),
            ("0-18446744073709551615", "18446744073709551615"),
            ("0-99999999999999999999999", "99999999999999999999999"),
            ("8", "8"),
            ("0,1-8", "8"),
        ] {
            assert_eq!(
                CpuList::parse_within(text, 8),
                Err(CpuListError::BeyondPossible {
                    part: text.rsplit(',').next().unwrap().to_string(),
                    cpu: cpu.to_string(),
                    limit: 8
                }),
                "{text}"
            );
        }
        assert_eq!(
            CpuList::parse_within("0-7", 8).unwrap().ids(),
            &[0, 1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            CpuList::parse_within("0-3,2", 8),
            Err(CpuListError::Repeated { cpu: 2 })
        );
        assert_eq!(
            CpuList::checked(vec![1, 9], 8),
            Err(CpuListError::BeyondPossible {
                part: "9".into(),
                cpu: "9".into(),
                limit: 8
            })
        );
    }
}
