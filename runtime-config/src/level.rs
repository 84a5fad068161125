use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The five tuning levels, from safe to fastest. Each is a preset of
/// [`Config`](crate::Config); see [`Config::for_level`](crate::Config::for_level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Level {
    /// Development: safe defaults, nothing pinned, workers park at once.
    Basic,
    /// Production: balanced; pins on machines with at least four CPUs.
    Standard,
    /// High performance: pinned, steals only when idle, spins longer.
    Aggressive,
    /// Real-time: thread-per-core on dedicated cores, SCHED_FIFO, locked memory.
    Enterprise,
    /// Ultra-low latency: thread-per-core, busy-polling, everything locked.
    Turbo,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Basic,
        Level::Standard,
        Level::Aggressive,
        Level::Enterprise,
        Level::Turbo,
    ];

    /// The lowercase name used in files and `SPRINT_LEVEL`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Basic => "basic",
            Level::Standard => "standard",
            Level::Aggressive => "aggressive",
            Level::Enterprise => "enterprise",
            Level::Turbo => "turbo",
        }
    }

    /// The level's place in [`Level::ALL`], Basic 0 to Turbo 4.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown level name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}; valid levels are basic, standard, aggressive, enterprise, turbo")]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Level, ParseLevelError> {
        let t = s.trim();
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseLevelError(s.to_string()))
    }
}

impl TryFrom<String> for Level {
    type Error = ParseLevelError;

    fn try_from(s: String) -> Result<Level, ParseLevelError> {
        s.parse()
    }
}

impl From<Level> for String {
    fn from(l: Level) -> String {
        l.name().to_string()
    }
}
