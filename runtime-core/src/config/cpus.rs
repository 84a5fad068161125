use serde::{Deserialize, Serialize};
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
    type Error = String;

    fn try_from(r: CpuListRepr) -> Result<CpuList, String> {
        match r {
            CpuListRepr::Text(s) => s.parse(),
            CpuListRepr::Ids(v) => Ok(CpuList(v)),
        }
    }
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
}

impl FromStr for CpuList {
    type Err = String;

    fn from_str(s: &str) -> Result<CpuList, String> {
        let mut out = Vec::new();
        let t = s.trim();
        if t.is_empty() {
            return Err("the CPU list is empty".into());
        }
        for part in t.split(',') {
            let part = part.trim();
            let num = |x: &str| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{x:?} in {part:?} is not a CPU number"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(format!("the range {part:?} runs backwards"));
                    }
                    out.extend(a..=b);
                }
                None => out.push(num(part)?),
            }
        }
        Ok(CpuList(out))
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
    fn parses_ranges_and_singles() {
        let c: CpuList = "0-2, 5,7-8".parse().unwrap();
        assert_eq!(c.ids(), &[0, 1, 2, 5, 7, 8]);
        assert_eq!(c.to_string(), "0-2,5,7-8");
    }

    #[test]
    fn rejects_malformed_lists() {
        for bad in ["", "a", "1-", "3-1", "1,,2", "-4"] {
            assert!(bad.parse::<CpuList>().is_err(), "{bad:?} should fail");
        }
    }
}
