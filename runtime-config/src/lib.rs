//! Sprint's configuration: the level presets (the one level table), the
//! TOML file, `SPRINT_*` variables, and validation with typed errors.
//!
//! This crate reads nothing from the OS besides the file it is given and
//! the environment: the machine a configuration is checked against
//! ([`Machine`]) is read by sprint-os.
//!
//! Precedence, lowest first: the chosen level's preset, the TOML file, the
//! environment. [`Config::sources`] says where each effective value came
//! from. Fields for settings that later layers apply (memory, tuning, I/O)
//! are carried and validated here so that one file configures everything.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod adaptive;
mod builder;
mod cpus;
mod error;
mod level;
mod load;
mod objective;
mod presets;
mod validate;

pub use builder::ConfigBuilder;
pub use cpus::{possible_cpus, CpuList, CpuListError, FALLBACK_POSSIBLE_CPUS};
pub use error::{ConfigError, ParseEnumError};
pub use level::{Level, ParseLevelError};
pub use load::Source;
pub use objective::{Objective, ObjectiveError};
pub use validate::{Machine, MAX_WORKERS_PER_CPU};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $var),+
        }

        impl $name {
            /// Every value, as written in files and variables.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name used in files and variables.
            pub fn name(self) -> &'static str {
                match self { $($name::$var => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, ParseEnumError> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$var),)+
                    _ => Err(ParseEnumError {
                        what: stringify!($name),
                        value: s.to_string(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }
    };
}

named_enum! {
    /// Whether workers are pinned to their planned CPU.
    Pinning {
        /// Never pin.
        Never = "never",
        /// Pin when the runtime has at least four CPUs.
        Auto = "auto",
        /// Always pin.
        Always = "always",
    }
}

named_enum! {
    /// Where tasks may run.
    Scheduling {
        /// `spawn`ed tasks may be stolen as soon as a worker runs dry.
        WorkStealing = "work-stealing",
        /// Stolen only by a worker that stayed idle for its spin time.
        StealWhenIdle = "steal-when-idle",
        /// Never moved: each task stays on the worker it was placed on.
        ThreadPerCore = "thread-per-core",
    }
}

named_enum! {
    /// What a worker does with nothing to run.
    IdleStrategy {
        /// Sleep at once.
        Park = "park",
        /// Spin for `idle_spin_us`, then sleep.
        SpinThenPark = "spin-then-park",
        /// Never sleep: poll for work continuously.
        BusyPoll = "busy-poll",
    }
}

named_enum! {
    /// The I/O driver (applied by sprint-io).
    IoDriver {
        /// epoll, through mio.
        Epoll = "epoll",
        /// io_uring, falling back to epoll with the reason reported.
        Uring = "uring",
    }
}

named_enum! {
    /// The global allocator the level recommends (applied by sprint-alloc).
    Allocator {
        /// The system allocator.
        System = "system",
        /// mimalloc.
        Mimalloc = "mimalloc",
    }
}

named_enum! {
    /// What memory is locked in RAM (applied by sprint-alloc and the tuner).
    LockMemory {
        /// Nothing.
        None = "none",
        /// The workers' arenas.
        Arenas = "arenas",
        /// Everything (mlockall).
        All = "all",
    }
}

named_enum! {
    /// How soon freed memory goes back to the OS: the Rust form of the
    /// seed's GC target (footprint against page faults).
    Reclaim {
        /// Returned soon.
        Soon = "soon",
        /// Returned lazily.
        Lazy = "lazy",
        /// Kept for reuse.
        Keep = "keep",
        /// Never returned.
        Never = "never",
    }
}

named_enum! {
    /// How workers are laid out on the machine's topology when no `cpus`
    /// are named (applied by sprint-os's placement plan).
    Placement {
        /// Across NUMA nodes and packages first: each worker gets its own
        /// memory bandwidth and caches.
        Spread = "spread",
        /// Fill one NUMA node's cores first: workers share the last-level
        /// cache and stay near one memory controller.
        Pack = "pack",
    }
}

named_enum! {
    /// The machine-wide settings `sprint-tune apply --system` changes
    /// (tuned's profile), each tier including the one before. Never
    /// applied by a runtime: only by the operator's tool, with a journal
    /// that restores them.
    SystemProfile {
        /// Nothing machine-wide.
        None = "none",
        /// Fewer timer interrupts: `vm.stat_interval = 10`,
        /// `kernel.timer_migration = 0`.
        Quiet = "quiet",
        /// Also socket busy polling, no automatic NUMA balancing,
        /// transparent huge pages on request, and huge pages reserved for
        /// the arenas when `huge_pages` is on.
        LowLatency = "low-latency",
        /// Also every IRQ steered off the workers' CPUs.
        Isolated = "isolated",
    }
}

named_enum! {
    /// The real-time scheduling class of the workers (applied by the tuner).
    RtPolicy {
        /// SCHED_OTHER.
        None = "none",
        /// SCHED_FIFO.
        Fifo = "fifo",
        /// SCHED_RR.
        RoundRobin = "rr",
    }
}

/// Everything Sprint can be told. Build it with [`Config::for_level`] or
/// [`Config::load`], change fields freely, then [`Config::validate`].
///
/// ```
/// use sprint_config::{Config, Level};
/// let mut cfg = Config::for_level(Level::Aggressive);
/// cfg.workers = Some(1);
/// cfg.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The level this configuration started from.
    pub level: Level,
    /// Worker threads; `None` means one per planned CPU.
    pub workers: Option<usize>,
    /// The CPUs to place workers on; `None` means the allowed CPUs (at
    /// Enterprise and Turbo, the kernel's isolated CPUs if any).
    pub cpus: Option<CpuList>,
    /// Whether each worker is pinned to its CPU.
    pub pinning: Pinning,
    /// How workers are laid out on the topology when `cpus` is not given.
    pub placement: Placement,
    /// Where tasks may run.
    pub scheduling: Scheduling,
    /// What an idle worker does.
    pub idle: IdleStrategy,
    /// How long `spin-then-park` spins, in µs.
    pub idle_spin_us: u64,
    /// Cooperative budget: how many ready operations a task may do in one
    /// poll before it must yield.
    pub coop_budget: u32,
    /// Polls between two checks of timers and the inbox.
    pub event_interval: u32,
    /// Worker thread stack, in bytes (at least 64 KiB).
    pub stack_size: usize,
    /// Workers plus blocking threads; `None` means workers plus the level's
    /// default blocking pool.
    pub max_threads: Option<usize>,
    /// How long an idle blocking thread stays, in ms.
    pub blocking_keep_alive_ms: u64,
    /// The I/O driver.
    pub io_driver: IoDriver,
    /// Register buffers with io_uring.
    pub uring_registered_buffers: bool,
    /// Use an SQPOLL kernel thread where a spare CPU can host it.
    pub uring_sqpoll: bool,
    /// The CPU for the SQPOLL kernel thread; `None`: an isolated CPU
    /// (`isolcpus=`) that no worker uses, if there is one. A CPU running
    /// other work would lose most of itself to the polling thread.
    pub uring_sqpoll_cpu: Option<usize>,
    /// The recommended global allocator.
    pub allocator: Allocator,
    /// Per-worker arenas.
    pub arenas: bool,
    /// Bytes each worker's arena commits at start: the preallocation per
    /// worker, prefaulted and locked where the level says (less when it
    /// would not fit in the memory limit with its headroom: see
    /// sprint-os's memory fit). The workers' preallocations together must
    /// fit in the memory budget, or validation refuses the value.
    pub arena_prealloc_bytes: usize,
    /// Touch the arena's pages at start.
    pub prefault: bool,
    /// What to lock in RAM.
    pub lock_memory: LockMemory,
    /// Ask for huge pages.
    pub huge_pages: bool,
    /// Bind each arena to its worker's NUMA node.
    pub numa_bind: bool,
    /// How soon freed memory is returned.
    pub reclaim: Reclaim,
    /// Ceiling on all arenas, as a percentage of the smaller of RAM and the
    /// cgroup limit; held below that limit less its headroom (a quarter,
    /// at least 16 MiB) and what is resident at start.
    pub memory_budget_percent: u8,
    /// Real-time class of the workers.
    pub rt_policy: RtPolicy,
    /// Real-time priority, 1 to 99.
    pub rt_priority: u8,
    /// The workers' nice value, -20 to 19, where they are not real-time.
    pub nice: i8,
    /// PR_SET_TIMERSLACK for the workers, in ns; `None` keeps the default.
    pub timer_slack_ns: Option<u64>,
    /// A poll longer than this is a stall, in µs.
    pub stall_threshold_us: u64,
    /// Record the built-in latency histograms (poll duration, schedule
    /// delay, I/O latency, timer lateness) and detect stalls.
    pub metrics: bool,
    /// The built-in histograms time one in this many polls, queueings and
    /// I/O operations (a power of two; 1: every one); stalls are checked on
    /// every poll.
    pub metrics_sample_every: u32,
    /// Serve `/metrics` (OpenMetrics) on this address, e.g.
    /// `127.0.0.1:9464`; port 0 picks one (see `Runtime::metrics_addr`).
    pub metrics_addr: Option<String>,
    /// `health()` reports live tasks above this as a possible leak.
    pub health_max_tasks: u64,
    /// Move the level while running, between `adaptive_min_level` and
    /// `adaptive_max_level`, to meet `adaptive_objective`.
    pub adaptive: bool,
    /// The latency objective: `<histogram> <p50|p95|p99|p99.9> < <bound>`,
    /// e.g. `schedule_delay p99 < 500us` or `relay_latency p99 < 2ms`.
    pub adaptive_objective: String,
    /// The lowest level the controller may use.
    pub adaptive_min_level: Level,
    /// The highest (the runtime starts with its restart-only settings).
    pub adaptive_max_level: Level,
    /// The controller's window, in ms.
    pub adaptive_window_ms: u64,
    /// Windows in a row missing the objective before stepping up.
    pub adaptive_up_after: u32,
    /// Windows in a row meeting it with margin (at most half the bound)
    /// and a low busy ratio before stepping down.
    pub adaptive_down_after: u32,
    /// The busy ratio below which stepping down is allowed, in percent.
    pub adaptive_busy_below_percent: u8,
    /// The least time between a transition and one in the opposite
    /// direction, in ms.
    pub adaptive_dwell_ms: u64,
    /// How long a graceful shutdown may take, in ms.
    pub shutdown_timeout_ms: u64,
    /// How long `#[sprint::main]` waits, after the first SIGINT or SIGTERM
    /// has woken `sprint::shutdown`, for `main` to return before it cancels
    /// every task, in ms (the draining phase: for a program that sets it,
    /// or that watches the shutdown token or those signals).
    pub drain_timeout_ms: u64,
    /// Run every task's polls inside a `tracing` span `task` carrying its
    /// id and name (off by default: no span is built when off).
    pub task_spans: bool,
    /// The machine-wide profile `sprint-tune apply --system` applies.
    pub system_profile: SystemProfile,
    /// Fail instead of degrading when a setting cannot be applied.
    pub strict: bool,
    /// Where each value came from.
    #[serde(skip)]
    pub sources: BTreeMap<String, Source>,
}

impl Default for Config {
    /// The Standard level.
    fn default() -> Config {
        Config::for_level(Level::Standard)
    }
}

impl Config {
    /// The idle spin as a duration.
    pub fn idle_spin(&self) -> Duration {
        Duration::from_micros(self.idle_spin_us)
    }

    /// The stall threshold as a duration.
    pub fn stall_threshold(&self) -> Duration {
        Duration::from_micros(self.stall_threshold_us)
    }

    /// The shutdown deadline as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The draining deadline as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The workers a runtime of this configuration starts on `machine`:
    /// `workers`, else one per named CPU, else one per dedicated (isolated
    /// and allowed) CPU at the levels that want them, else one per allowed
    /// CPU (1 where the machine is unknown).
    pub fn planned_workers(&self, machine: &Machine) -> usize {
        if let Some(w) = self.workers {
            return w.max(1);
        }
        if let Some(c) = &self.cpus {
            return c.ids().len().max(1);
        }
        let Some(allowed) = &machine.allowed else {
            return 1;
        };
        let dedicated = machine
            .isolated
            .iter()
            .filter(|c| allowed.contains(c))
            .count();
        if self.wants_dedicated_cores() && dedicated > 0 {
            dedicated
        } else {
            allowed.len().max(1)
        }
    }

    /// The blocking threads this configuration allows, given `workers`.
    pub fn blocking_threads(&self, workers: usize) -> usize {
        match self.max_threads {
            Some(m) => m.saturating_sub(workers),
            None => presets::DEFAULT_BLOCKING[self.level.index()],
        }
    }
}
