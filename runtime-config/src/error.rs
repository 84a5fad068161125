use std::path::PathBuf;

/// A configuration value that cannot be used. Every variant names what was
/// wrong and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field has a value outside what it accepts.
    #[error("invalid value for `{field}`: {value}: {reason}")]
    Invalid {
        /// The field (or variable) name.
        field: String,
        /// The value given.
        value: String,
        /// Why it is refused, and what would be accepted.
        reason: String,
    },
    /// A field's value is above what this machine or the configuration
    /// can carry.
    #[error("invalid value for `{field}`: {value}: the limit is {limit}: {reason}")]
    Limit {
        /// The field (or variable) name.
        field: String,
        /// The value given.
        value: String,
        /// The largest value accepted here, with its unit.
        limit: String,
        /// What sets the limit.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a Sprint config (an unknown key, a
    /// wrong type).
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `TOML`.
        origin: String,
        /// The parser's message, naming the key and the line.
        message: String,
    },
    /// A `SPRINT_*` variable that Sprint does not read.
    #[error("unknown environment variable {var}; Sprint reads {known}")]
    UnknownVariable {
        /// The variable.
        var: String,
        /// The variables Sprint reads.
        known: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        field: &str,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(
        field: &str,
        value: impl ToString,
        limit: impl ToString,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Limit {
            field: field.to_string(),
            value: value.to_string(),
            limit: limit.to_string(),
            reason: reason.into(),
        }
    }
}

/// A word that is not one of a setting's values (`pinning = "sometimes"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {what}: expected one of {}", expected.join(", "))]
pub struct ParseEnumError {
    /// The setting's type, e.g. `Pinning`.
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// Every value accepted.
    pub expected: &'static [&'static str],
}
