//! What a runtime costs to start, what it holds, and what it leaves behind
//! when it exits, per level (issue 15, "Turbo is a good neighbour").
//!
//! * `once`: one process builds a runtime (one worker on `--cpu`, as the
//!   echo and relay servers do), prints one JSON line (the CPU and wall
//!   time the start took, resident and locked memory from
//!   /proc/self/status, the start report's memory lines), holds it for
//!   `--hold-ms`, drops it and exits.
//! * `run`: `once` for each level, interleaved, `--runs` times; the
//!   process's whole CPU (start, hold and exit, from `wait4`) beside the
//!   start's; median and spread (lowest–highest).
//! * `after`: the neighbour test. For each level, interleaved: a `once`
//!   process runs and exits; `--gap-ms` later a probe starts on
//!   `--probe-cpu` for `--probe-s` seconds: a wake-up probe as cyclictest
//!   runs one (a real-time thread sleeping to an absolute time each
//!   millisecond; its lateness is what the machine does with the CPU,
//!   whatever other programs' load), beside the kernel threads' CPU and
//!   /proc/vmstat's memory counters over the same window.
//!
//! A level is written `LEVEL[:LOCK][+mimalloc]`: `turbo:all` sets
//! `lock_memory = all` (Turbo's preset until issue 15), `+mimalloc` makes
//! mimalloc the process's global allocator (as the level recommends).
//!
//! `cargo run --release -p sprint-bench --example start_cost -- run --runs 5`
//! `cargo run --release -p sprint-bench --example start_cost -- after --runs 5`

use clap::{Parser, Subcommand};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// The global allocator: the system's, or mimalloc where
/// `START_COST_MIMALLOC=1` (the allocator a Turbo program is told to
/// install): decided at the first allocation, before any memory is
/// handed out, and never changed.
struct Chosen;

static CHOICE: AtomicU8 = AtomicU8::new(0);
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

fn choice() -> u8 {
    match CHOICE.load(Relaxed) {
        0 => {
            // SAFETY: a NUL-terminated name; getenv does not allocate.
            let v = unsafe { libc::getenv(c"START_COST_MIMALLOC".as_ptr()) };
            // SAFETY: getenv's result is null or a NUL-terminated string.
            let mi = !v.is_null() && unsafe { *v } == b'1' as libc::c_char;
            let c = if mi { MIMALLOC } else { SYSTEM };
            CHOICE.store(c, Relaxed);
            c
        }
        c => c,
    }
}

// SAFETY: every call goes to one allocator, the same for the whole run.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's contract.
        unsafe {
            if choice() == MIMALLOC {
                sprint::memory::MiMalloc.alloc(l)
            } else {
                System.alloc(l)
            }
        }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded; `p` came from the same allocator.
        unsafe {
            if choice() == MIMALLOC {
                sprint::memory::MiMalloc.dealloc(p, l)
            } else {
                System.dealloc(p, l)
            }
        }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: forwarded; `p` came from the same allocator.
        unsafe {
            if choice() == MIMALLOC {
                sprint::memory::MiMalloc.realloc(p, l, n)
            } else {
                System.realloc(p, l, n)
            }
        }
    }
}

#[global_allocator]
static GLOBAL: Chosen = Chosen;
use hdrhistogram::Histogram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Start-up cost, memory held and the disturbance after exit, per level")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start one runtime, print its figures as JSON, hold, exit.
    Once {
        /// The level, or `LEVEL:LOCK` to set `lock_memory` too
        /// (`turbo:all`: Turbo as it was until issue 15, with mlockall).
        #[arg(long, default_value = "turbo")]
        level: String,
        /// The worker's CPU.
        #[arg(long, default_value_t = 0)]
        cpu: usize,
        /// How long to hold the runtime before dropping it, ms.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
    },
    /// `once` per level, interleaved; the start's CPU and memory.
    Run {
        /// Repetitions.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Levels (`LEVEL` or `LEVEL:LOCK`), comma-separated.
        #[arg(
            long,
            default_value = "basic,standard,enterprise,turbo,turbo:all,turbo+mimalloc,turbo:all+mimalloc"
        )]
        levels: String,
    },
    /// A latency probe started `--gap-ms` after each level's process exits.
    After {
        /// Repetitions.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Levels (`LEVEL` or `LEVEL:LOCK`), comma-separated.
        #[arg(long, default_value = "basic,turbo+mimalloc,turbo:all+mimalloc")]
        levels: String,
        /// How long each process holds its runtime, ms.
        #[arg(long, default_value_t = 2_000)]
        hold_ms: u64,
        /// From the process's exit to the probe's start, ms.
        #[arg(long, default_value_t = 1_000)]
        gap_ms: u64,
        /// How long the probe runs, s.
        #[arg(long, default_value_t = 15)]
        probe_s: u64,
        /// The probe's CPU (the runtime's worker takes CPU 0).
        #[arg(long, default_value_t = 1)]
        probe_cpu: usize,
    },
}

fn main() {
    match Args::parse().cmd {
        Cmd::Once {
            level,
            cpu,
            hold_ms,
        } => once(&level, cpu, hold_ms),
        Cmd::Run { runs, levels } => run(runs, &split(&levels)),
        Cmd::After {
            runs,
            levels,
            hold_ms,
            gap_ms,
            probe_s,
            probe_cpu,
        } => after(runs, &split(&levels), hold_ms, gap_ms, probe_s, probe_cpu),
    }
}

fn split(s: &str) -> Vec<String> {
    s.split(',').map(|l| l.trim().to_string()).collect()
}

/// This process's (`RUSAGE_SELF`) or this thread's (`RUSAGE_THREAD`)
/// user + system CPU, ns.
fn cpu_ns(who: libc::c_int) -> u64 {
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(who, &mut r) };
    tv_ns(r.ru_utime) + tv_ns(r.ru_stime)
}

fn tv_ns(t: libc::timeval) -> u64 {
    t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000
}

/// A `kB` line of /proc/self/status, in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// `LEVEL` or `LEVEL:LOCK` (`turbo:all`: Turbo with `lock_memory = all`,
/// its preset until issue 15).
fn once(spec: &str, cpu: usize, hold_ms: u64) {
    let (level, lock) = spec.split_once(':').unwrap_or((spec, ""));
    let bad = |e: String| -> ! {
        eprintln!("start_cost: --level {spec}: {e}");
        std::process::exit(2)
    };
    let level: sprint::Level = level.parse().unwrap_or_else(|e| bad(format!("{e}")));
    let lock: Option<sprint::config::LockMemory> =
        (!lock.is_empty()).then(|| lock.parse().unwrap_or_else(|e| bad(format!("{e}"))));
    let (cpu0, main0, wall0) = (
        cpu_ns(libc::RUSAGE_SELF),
        cpu_ns(libc::RUSAGE_THREAD),
        Instant::now(),
    );
    let rt = sprint::Builder::new()
        .level(level)
        .read_env(false)
        .workers(1)
        .cpus(vec![cpu])
        // The probe measures what the memory leaves behind, not a
        // real-time class's exit.
        .configure(move |c| {
            c.rt_policy = sprint::config::RtPolicy::None;
            if let Some(l) = lock {
                c.lock_memory = l;
            }
        })
        .build()
        .unwrap_or_else(|e| {
            eprintln!("start_cost: cannot start Sprint {level}: {e}");
            std::process::exit(1)
        });
    // The process's CPU counts a busy-polling worker's spin from the
    // moment it is ready until this thread runs again; the calling
    // thread's is the start's own work (planning, topology, mlockall).
    let start_cpu_ns = cpu_ns(libc::RUSAGE_SELF) - cpu0;
    let main_cpu_ns = cpu_ns(libc::RUSAGE_THREAD) - main0;
    let start_wall_ns = wall0.elapsed().as_nanos() as u64;
    for l in rt.start_report().memory() {
        eprintln!("start_cost {level}: memory: {l}");
    }
    let stats = rt.handle().memory_stats();
    let line = serde_json::json!({
        "level": spec,
        "mimalloc": choice() == MIMALLOC,
        "start_cpu_ms": start_cpu_ns as f64 / 1e6,
        "main_thread_cpu_ms": main_cpu_ns as f64 / 1e6,
        "start_wall_ms": start_wall_ns as f64 / 1e6,
        "rss_kib": status_kib("VmRSS:"),
        "locked_kib": status_kib("VmLck:"),
        "arena_committed_kib": stats.iter().map(|s| s.arena.committed as u64).sum::<u64>() / 1024,
        "arena_locked_kib": stats.iter().map(|s| s.arena.locked as u64).sum::<u64>() / 1024,
        "arena_reserved_kib": stats.iter().map(|s| s.arena.capacity as u64).sum::<u64>() / 1024,
    });
    println!("{line}");
    std::thread::sleep(Duration::from_millis(hold_ms));
    let t = Instant::now();
    drop(rt);
    eprintln!("start_cost {level}: dropped in {:?}", t.elapsed());
}

/// A child's JSON line and its whole CPU (ns, from wait4).
struct Child {
    json: serde_json::Value,
    cpu_ns: u64,
}

/// Runs `once` for `spec` (`LEVEL[:LOCK][+mimalloc]`: the suffix makes
/// mimalloc the child's global allocator).
fn child(spec: &str, hold_ms: u64) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let (level, mi) = match spec.strip_suffix("+mimalloc") {
        Some(l) => (l, "1"),
        None => (spec, "0"),
    };
    // Reaped by wait4 below, which gives its resource usage too.
    #[allow(clippy::zombie_processes)]
    let c = Command::new(exe)
        .args(["once", "--level", level, "--hold-ms", &hold_ms.to_string()])
        .env("START_COST_MIMALLOC", mi)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn start_cost once");
    let pid = c.id() as libc::pid_t;
    let mut out = c.stdout.expect("piped");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut out, &mut text).expect("read the child");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child, valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let json = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        eprintln!("start_cost: {spec}: no figures ({e}): {text:?}");
        std::process::exit(1)
    });
    Child {
        json,
        cpu_ns: tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime),
    }
}

/// Median and spread.
fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    let fmt = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    format!(
        "{} ({}–{})",
        fmt(v[v.len() / 2]),
        fmt(v[0]),
        fmt(v[v.len() - 1])
    )
}

fn run(runs: usize, levels: &[String]) {
    let mut all: Vec<Vec<Child>> = levels.iter().map(|_| Vec::new()).collect();
    for r in 0..runs {
        for (i, l) in levels.iter().enumerate() {
            let c = child(l, 0);
            eprintln!(
                "run {r} {l}: process CPU {:.1} ms, {}",
                c.cpu_ns as f64 / 1e6,
                c.json
            );
            all[i].push(c);
        }
    }
    println!("| level | start CPU, ms (all threads) | calling thread's start CPU, ms | process CPU (start + exit), ms | start wall, ms | resident, MiB | locked (VmLck), MiB | arenas committed / locked / reserved, MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    for (l, cs) in levels.iter().zip(&all) {
        let f = |k: &str, div: f64| {
            summary(
                cs.iter()
                    .map(|c| c.json[k].as_f64().unwrap_or(0.0) / div)
                    .collect(),
            )
        };
        println!(
            "| {l} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
            f("start_cpu_ms", 1.0),
            f("main_thread_cpu_ms", 1.0),
            summary(cs.iter().map(|c| c.cpu_ns as f64 / 1e6).collect()),
            f("start_wall_ms", 1.0),
            f("rss_kib", 1024.0),
            f("locked_kib", 1024.0),
            f("arena_committed_kib", 1024.0),
            f("arena_locked_kib", 1024.0),
            f("arena_reserved_kib", 1024.0),
        );
    }
}

/// /proc/vmstat as name → value.
fn vmstat() -> std::collections::BTreeMap<String, i64> {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The counters that say what the kernel did with memory.
const COUNTERS: &[&str] = &[
    "compact_stall",
    "compact_daemon_wake",
    "compact_migrate_scanned",
    "thp_fault_alloc",
    "thp_collapse_alloc",
    "pgfree",
    "pgfault",
    "unevictable_pgs_munlocked",
];

/// What one probe saw: the wake-up lag's p99 and max (µs), in total and
/// per second, the kernel threads' CPU meanwhile (ms, the busiest named)
/// and the kernel counters' change.
struct Probe {
    p99_us: f64,
    max_us: f64,
    per_second_p99_us: Vec<f64>,
    kthread_ms: f64,
    busiest: Vec<(String, f64)>,
    kernel: Vec<(String, i64)>,
}

/// CPU time of every kernel thread (a child of kthreadd), ms by pid and
/// name.
fn kthreads() -> std::collections::BTreeMap<(u32, String), f64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After the name: state, ppid, ... utime is field 14, stime 15
        // (1-based over the whole line), so 11 and 12 here.
        let (Some(ppid), Some(ut), Some(st)) = (f.get(1), f.get(11), f.get(12)) else {
            continue;
        };
        if *ppid != "2" {
            continue;
        }
        let ticks = ut.parse::<f64>().unwrap_or(0.0) + st.parse::<f64>().unwrap_or(0.0);
        out.insert((pid, name), ticks * 1e3 / hz);
    }
    out
}

/// A wake-up probe on `cpu`, as cyclictest measures one: a thread in the
/// real-time class (SCHED_FIFO 1, where allowed) sleeps to an absolute
/// time every millisecond and records how late it woke. It preempts
/// every ordinary thread at once, so other programs' load does not show
/// in it; what does is what the kernel or the hypervisor does with the
/// CPU meanwhile. It sleeps between wake-ups: it takes no CPU from others.
fn probe(cpu: usize, secs: u64) -> Probe {
    let before = vmstat();
    let threads0 = kthreads();
    let per_second = std::thread::scope(|s| {
        s.spawn(|| {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            let param = libc::sched_param { sched_priority: 1 };
            // SAFETY: this thread, a valid parameter.
            if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
                eprintln!(
                    "start_cost: the probe runs without a real-time class ({}): other programs' load shows in it",
                    std::io::Error::last_os_error()
                );
            }
            let now = || {
                let mut t = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: a valid out-pointer.
                unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
                t.tv_sec * 1_000_000_000 + t.tv_nsec
            };
            let start = now();
            let mut due = start;
            let mut out = Vec::new();
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            for second in 1..=secs as i64 {
                while due < start + second * 1_000_000_000 {
                    due += 1_000_000;
                    let t = libc::timespec {
                        tv_sec: due / 1_000_000_000,
                        tv_nsec: due % 1_000_000_000,
                    };
                    // SAFETY: a valid absolute time; no remainder asked.
                    unsafe {
                        libc::clock_nanosleep(
                            libc::CLOCK_MONOTONIC,
                            libc::TIMER_ABSTIME,
                            &t,
                            std::ptr::null_mut(),
                        )
                    };
                    h.record((now() - due).max(1) as u64).ok();
                }
                out.push(std::mem::replace(
                    &mut h,
                    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap(),
                ));
            }
            out
        })
        .join()
        .expect("the probe thread")
    });
    let after = vmstat();
    let threads1 = kthreads();
    let mut busy: std::collections::BTreeMap<String, f64> = Default::default();
    for (k, ms) in &threads1 {
        let d = ms - threads0.get(k).copied().unwrap_or(0.0);
        // kworker/1:2-events and the like: by kind, not by instance.
        let kind = k.1.split(['/', '-']).next().unwrap_or(&k.1).to_string();
        *busy.entry(kind).or_default() += d;
    }
    let kthread_ms = busy.values().sum();
    let mut busiest: Vec<(String, f64)> = busy.into_iter().filter(|b| b.1 > 0.0).collect();
    busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
    busiest.truncate(4);
    let kernel = COUNTERS
        .iter()
        .map(|k| {
            let d = after.get(*k).unwrap_or(&0) - before.get(*k).unwrap_or(&0);
            (k.to_string(), d)
        })
        .collect();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for h in &per_second {
        all.add(h).ok();
    }
    Probe {
        p99_us: all.value_at_quantile(0.99) as f64 / 1e3,
        max_us: all.max() as f64 / 1e3,
        per_second_p99_us: per_second
            .iter()
            .map(|h| h.value_at_quantile(0.99) as f64 / 1e3)
            .collect(),
        kthread_ms,
        busiest,
        kernel,
    }
}

fn after(runs: usize, levels: &[String], hold_ms: u64, gap_ms: u64, probe_s: u64, cpu: usize) {
    let mut all: Vec<Vec<(Child, Probe)>> = levels.iter().map(|_| Vec::new()).collect();
    for r in 0..runs {
        for (i, l) in levels.iter().enumerate() {
            let c = child(l, hold_ms);
            std::thread::sleep(Duration::from_millis(gap_ms));
            let p = probe(cpu, probe_s);
            eprintln!(
                "run {r} after {l} (process CPU {:.0} ms, resident {} MiB, locked {} MiB): wake lag p99 {:.0} µs, max {:.0} µs; p99 per second {:?}; kernel threads {:.0} ms {:?}; {:?}",
                c.cpu_ns as f64 / 1e6,
                c.json["rss_kib"].as_u64().unwrap_or(0) / 1024,
                c.json["locked_kib"].as_u64().unwrap_or(0) / 1024,
                p.p99_us,
                p.max_us,
                p.per_second_p99_us.iter().map(|x| x.round()).collect::<Vec<_>>(),
                p.kthread_ms,
                p.busiest,
                p.kernel
            );
            all[i].push((c, p));
        }
    }
    println!("| after a process of | wake lag p99, µs | wake lag max, µs | worst second's p99, µs | kernel threads' CPU, ms | {} |", COUNTERS.join(" | "));
    println!("|---|---|---|---|---|{}", "---|".repeat(COUNTERS.len()));
    for (l, v) in levels.iter().zip(&all) {
        let counters: Vec<String> = (0..COUNTERS.len())
            .map(|k| summary(v.iter().map(|(_, p)| p.kernel[k].1 as f64).collect()))
            .collect();
        println!(
            "| {l} | {} | {} | {} | {} | {} |",
            summary(v.iter().map(|(_, p)| p.p99_us).collect()),
            summary(v.iter().map(|(_, p)| p.max_us).collect()),
            summary(
                v.iter()
                    .map(|(_, p)| p.per_second_p99_us.iter().copied().fold(0.0, f64::max))
                    .collect()
            ),
            summary(v.iter().map(|(_, p)| p.kthread_ms).collect()),
            counters.join(" | ")
        );
    }
}
