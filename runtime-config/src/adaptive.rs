//! What the adaptive settings mean for a start: the configuration a
//! runtime under the adaptive controller starts from, and whether its
//! workers need stealable deques. (The controller itself is sprint-ops'.)

use crate::{Config, ConfigError, Level, Scheduling, Source};

impl Config {
    /// Starts from the highest level's restart-only settings and the lowest
    /// level's live ones (fields the operator set keep their values).
    pub fn adaptive_start(&self) -> Result<Config, ConfigError> {
        let config = self;
        crate::validate::validate_adaptive(config)?;
        let hi = Config::for_level(config.adaptive_max_level);
        let lo = Config::for_level(config.adaptive_min_level);
        let mut c = config.clone();
        macro_rules! take {
            ($from:ident: $($f:ident),*) => {$(
                if config.left_to_level(stringify!($f)) {
                    c.$f = $from.$f.clone();
                }
            )*};
        }
        take!(hi: pinning, arenas, arena_prealloc_bytes, prefault, lock_memory, huge_pages, numa_bind, io_driver, uring_registered_buffers, uring_sqpoll, stack_size);
        take!(lo: scheduling, idle, idle_spin_us, rt_policy, rt_priority, nice, timer_slack_ns, coop_budget, event_interval);
        c.level = config.adaptive_min_level;
        Ok(c)
    }

    /// Whether a runtime built from `config` gives its workers stealable
    /// deques: where its scheduling steals, or where the adaptive controller
    /// may move to a level that steals (and the operator left `scheduling`
    /// to the level).
    pub fn needs_deques(&self) -> bool {
        let config = self;
        use Scheduling::ThreadPerCore;
        if config.scheduling != ThreadPerCore {
            return true;
        }
        config.adaptive
            && config.left_to_level("scheduling")
            && Level::ALL
                .iter()
                .filter(|l| **l >= config.adaptive_min_level && **l <= config.adaptive_max_level)
                .any(|l| Config::for_level(*l).scheduling != ThreadPerCore)
    }

    /// Whether `field` comes from the level (the operator did not set it):
    /// only those the controller takes from a level.
    pub fn left_to_level(&self, field: &str) -> bool {
        let config = self;
        matches!(config.sources().get(field), Some(Source::Preset(_)) | None)
    }
}
