//! The level table (DESIGN.md, "Levels"): the one place where a level turns
//! into settings. Columns are Basic, Standard, Aggressive, Enterprise, Turbo.

use super::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

struct Row<T>([T; 5]);

impl<T: Copy> Row<T> {
    const fn at(&self, level: Level) -> T {
        self.0[level as usize]
    }
}

use Allocator as A;
use IdleStrategy as I;
use LockMemory as L;
use Reclaim as R;
use Scheduling as S;

const PINNING: Row<Pinning> = Row([
    Pinning::Never,
    Pinning::Auto,
    Pinning::Always,
    Pinning::Always,
    Pinning::Always,
]);
const PLACEMENT: Row<Placement> = Row([
    Placement::Spread,
    Placement::Spread,
    Placement::Spread,
    Placement::Pack,
    Placement::Pack,
]);
const SYSTEM_PROFILE: Row<SystemProfile> = Row([
    SystemProfile::None,
    SystemProfile::None,
    SystemProfile::Quiet,
    SystemProfile::LowLatency,
    SystemProfile::Isolated,
]);
const SCHEDULING: Row<Scheduling> = Row([
    S::WorkStealing,
    S::WorkStealing,
    S::StealWhenIdle,
    S::ThreadPerCore,
    S::ThreadPerCore,
]);
const IDLE: Row<IdleStrategy> = Row([
    I::Park,
    I::SpinThenPark,
    I::SpinThenPark,
    I::SpinThenPark,
    I::BusyPoll,
]);
const IDLE_SPIN_US: Row<u64> = Row([0, 20, 200, 1_000, 0]);
const COOP_BUDGET: Row<u32> = Row([128, 128, 64, 32, 32]);
const EVENT_INTERVAL: Row<u32> = Row([61, 61, 61, 31, 31]);
const STACK: Row<usize> = Row([2 * MIB, 2 * MIB, MIB, MIB, 256 * KIB]);
/// Blocking threads beside the workers when `max_threads` is not given.
pub(super) const DEFAULT_BLOCKING: [usize; 5] = [64, 64, 32, 16, 8];
const IO: Row<IoDriver> = Row([
    IoDriver::Epoll,
    IoDriver::Uring,
    IoDriver::Uring,
    IoDriver::Uring,
    IoDriver::Uring,
]);
const URING_REGISTERED: Row<bool> = Row([false, false, false, true, true]);
const URING_SQPOLL: Row<bool> = Row([false, false, false, false, true]);
const ALLOCATOR: Row<Allocator> = Row([
    A::System,
    A::Mimalloc,
    A::Mimalloc,
    A::Mimalloc,
    A::Mimalloc,
]);
/// Basic has arenas too (grown on demand, nothing preallocated): without
/// one its task cells came from the system allocator, which made spawning
/// with 1 M tasks outstanding 1.25–1.32× glommio's; with one it is
/// Standard's, 0.9× (issue 15).
const ARENAS: Row<bool> = Row([true, true, true, true, true]);
/// Each worker's arena preallocation: what a worker may use before its
/// arena grows, stated per worker (not a share of RAM).
const PREALLOC: Row<usize> = Row([0, 4 * MIB, 16 * MIB, 32 * MIB, 64 * MIB]);
const PREFAULT: Row<bool> = Row([false, false, true, true, true]);
/// Turbo locks its arenas' preallocation, as Enterprise does. It locked
/// everything (mlockall, MCL_CURRENT | MCL_FUTURE) until issue 15: every
/// later mapping was then faulted in and locked whole (thread stacks, the
/// allocator's reservations), which cost about 0.9 s of CPU at start and
/// over a GiB resident for an echo server. `lock_memory = all` still asks
/// for it.
const LOCK: Row<LockMemory> = Row([L::None, L::None, L::None, L::Arenas, L::Arenas]);
const HUGE: Row<bool> = Row([false, false, false, true, true]);
const NUMA: Row<bool> = Row([false, false, false, true, true]);
const RECLAIM: Row<Reclaim> = Row([R::Soon, R::Lazy, R::Keep, R::Keep, R::Never]);
const BUDGET: Row<u8> = Row([50, 75, 80, 90, 95]);
const RT: Row<RtPolicy> = Row([
    RtPolicy::None,
    RtPolicy::None,
    RtPolicy::None,
    RtPolicy::Fifo,
    RtPolicy::Fifo,
]);
const RT_PRIORITY: Row<u8> = Row([0, 0, 0, 50, 80]);
/// Worker niceness where no real-time class is set.
const NICE: Row<i8> = Row([0, 0, -5, -10, -15]);
const SLACK_NS: Row<Option<u64>> = Row([None, None, Some(50_000), Some(1_000), Some(1)]);
const STALL_US: Row<u64> = Row([100_000, 10_000, 2_000, 1_000, 250]);
const SHUTDOWN_MS: Row<u64> = Row([5_000, 5_000, 5_000, 2_000, 2_000]);

impl Config {
    /// The preset of `level`, every field marked as coming from it.
    pub fn for_level(level: Level) -> Config {
        let mut cfg = Config {
            level,
            workers: None,
            cpus: None,
            pinning: PINNING.at(level),
            placement: PLACEMENT.at(level),
            scheduling: SCHEDULING.at(level),
            idle: IDLE.at(level),
            idle_spin_us: IDLE_SPIN_US.at(level),
            coop_budget: COOP_BUDGET.at(level),
            event_interval: EVENT_INTERVAL.at(level),
            stack_size: STACK.at(level),
            max_threads: None,
            blocking_keep_alive_ms: 10_000,
            io_driver: IO.at(level),
            uring_registered_buffers: URING_REGISTERED.at(level),
            uring_sqpoll: URING_SQPOLL.at(level),
            uring_sqpoll_cpu: None,
            allocator: ALLOCATOR.at(level),
            arenas: ARENAS.at(level),
            arena_prealloc_bytes: PREALLOC.at(level),
            prefault: PREFAULT.at(level),
            lock_memory: LOCK.at(level),
            huge_pages: HUGE.at(level),
            numa_bind: NUMA.at(level),
            reclaim: RECLAIM.at(level),
            memory_budget_percent: BUDGET.at(level),
            rt_policy: RT.at(level),
            rt_priority: RT_PRIORITY.at(level),
            nice: NICE.at(level),
            timer_slack_ns: SLACK_NS.at(level),
            stall_threshold_us: STALL_US.at(level),
            metrics: true,
            metrics_sample_every: 16,
            adaptive: false,
            adaptive_objective: "schedule_delay p99 < 1ms".into(),
            adaptive_min_level: Level::Basic,
            adaptive_max_level: Level::Turbo,
            adaptive_window_ms: 1_000,
            adaptive_up_after: 3,
            adaptive_down_after: 10,
            adaptive_busy_below_percent: 30,
            adaptive_dwell_ms: 3_000,
            metrics_addr: None,
            health_max_tasks: 1_000_000,
            shutdown_timeout_ms: SHUTDOWN_MS.at(level),
            drain_timeout_ms: 5_000,
            task_spans: false,
            system_profile: SYSTEM_PROFILE.at(level),
            strict: false,
            sources: BTreeMap::new(),
        };
        for key in load::KEYS {
            cfg.sources.insert(key.to_string(), Source::Preset(level));
        }
        cfg
    }

    /// True at the levels whose workers take dedicated cores (the
    /// kernel's isolated CPUs when no `cpus` are named).
    pub fn wants_dedicated_cores(&self) -> bool {
        self.level >= Level::Enterprise
    }
}
