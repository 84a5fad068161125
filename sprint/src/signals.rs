//! What `#[sprint::main]` and `#[sprint::test]` expand to.
//!
//! `run_main` turns SIGINT and SIGTERM into a graceful shutdown in two
//! phases. Draining: the first signal requests [`crate::shutdown`], and a
//! program that asked for draining (`drain = "…"`, or `drain_timeout_ms`
//! set) or watches the token (or the stop signals) gets up to
//! `drain_timeout_ms` for `main` to return by itself; if it does, its
//! value is returned as usual. Cancelling: otherwise (or for a program
//! that watches nothing) the main future is dropped, every task is
//! cancelled, the workers are joined within the shutdown deadline, and the
//! process exits with 128 + the signal number. (The default SIGTERM action
//! would end the process without running a single `Drop`, and so without
//! restoring anything the runtime changed.) A second signal, in either
//! phase, exits at once.

use crate::{Builder, Level};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// The options of the attributes, as the macro read them.
#[derive(Debug, Clone, Copy, Default)]
pub struct MainOptions {
    /// `level = "…"`.
    pub level: Option<Level>,
    /// `workers = N`.
    pub workers: Option<usize>,
    /// `config = "…"`.
    pub config: Option<&'static str>,
    /// `drain = "…"`, in ms.
    pub drain_ms: Option<u64>,
    /// `log = true`: install a `tracing` subscriber if none is set.
    pub log: bool,
    /// `start_paused = true` (tests): one worker, the clock paused.
    pub start_paused: bool,
}

fn builder(o: MainOptions, read_env: bool) -> Builder {
    let mut b = Builder::new().read_env(read_env);
    if let Some(l) = o.level {
        b = b.level(l);
    }
    if let Some(n) = o.workers {
        b = b.workers(n);
    }
    if let Some(p) = o.config {
        b = b.config_file(p);
    }
    if let Some(ms) = o.drain_ms {
        b = b.configure(move |c| c.drain_timeout_ms = ms);
    }
    b
}

fn signal_name(sig: i32) -> &'static str {
    if sig == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// What the signal watcher and `main` share about the draining phase.
#[derive(Debug)]
struct Drain {
    timeout: Duration,
    /// The program asked for a draining phase (`drain = "…"`, or
    /// `drain_timeout_ms` set in code, a file or the environment), so it
    /// drains even if no task had looked at the token yet when the signal
    /// came.
    asked: bool,
    /// `main` returned (set by the main thread).
    finished: AtomicBool,
    /// The watcher thread, to unpark when `main` returns.
    watcher: OnceLock<Thread>,
}

/// The first SIGINT or SIGTERM: request shutdown, let a program that
/// watches drain until `main` returns or the deadline passes, then (if
/// `main` is still running) stop `block_on`.
fn on_first_signal(sig: i32, drain: &Drain, stop: &AtomicBool, main_thread: &Thread) {
    crate::shutdown::request();
    if (drain.asked || crate::shutdown::watched()) && !drain.timeout.is_zero() {
        let name = signal_name(sig);
        eprintln!(
            "sprint: {name} received, draining (main has {:?} to return; a second signal exits at once)",
            drain.timeout
        );
        let deadline = Instant::now() + drain.timeout;
        while !drain.finished.load(SeqCst) {
            let now = Instant::now();
            if now >= deadline {
                eprintln!("sprint: the drain deadline passed with main still running");
                break;
            }
            std::thread::park_timeout(deadline - now);
        }
        if drain.finished.load(SeqCst) {
            return;
        }
    }
    stop.store(true, SeqCst);
    main_thread.unpark();
}

/// Installs a `tracing` fmt subscriber filtered by `SPRINT_LOG` (default
/// `info`), unless the program already set a global one. Returns whether
/// it installed one. Sprint never calls it unless asked (`log = true` on
/// `#[sprint::main]`, or [`Builder::log`](crate::Builder::log)).
pub fn install_log_subscriber() -> bool {
    let filter = std::env::var("SPRINT_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .try_init()
        .is_ok()
}

/// Builds the runtime (exiting with status 2 and the reason if it cannot),
/// runs `body` on it, and handles SIGINT and SIGTERM.
pub fn run_main<F: Future>(options: MainOptions, body: F) -> F::Output {
    if options.log {
        install_log_subscriber();
    }
    let rt = match builder(options, true).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sprint: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let second = Arc::new(AtomicBool::new(false));
    let caught = Arc::new(AtomicI32::new(0));
    for sig in [SIGINT, SIGTERM] {
        // A second signal, once shutdown has begun, exits at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, second.clone());
    }
    let asked = options.drain_ms.is_some()
        || !matches!(
            rt.config().sources.get("drain_timeout_ms"),
            None | Some(crate::config::Source::Preset(_))
        );
    let drain = Arc::new(Drain {
        timeout: rt.config().drain_timeout(),
        asked,
        finished: AtomicBool::new(false),
        watcher: OnceLock::new(),
    });
    let watcher = watch(&stop, &second, &caught, &drain);
    let out = rt.handle().block_on_or_stop(body, &stop);
    drain.finished.store(true, SeqCst);
    if let Some(t) = drain.watcher.get() {
        t.unpark();
    }
    if let Some(w) = &watcher {
        w.close();
    }
    match out {
        Some(v) => {
            drop(rt);
            v
        }
        None => {
            let sig = caught.load(SeqCst);
            let name = signal_name(sig);
            let timeout = rt.config().shutdown_timeout();
            eprintln!("sprint: {name} received, shutting down (deadline {timeout:?})");
            if let Err(e) = rt.shutdown_timeout(timeout) {
                eprintln!("sprint: {e}");
            }
            std::process::exit(128 + sig);
        }
    }
}

/// Starts the thread that turns the first SIGINT or SIGTERM into a stop.
#[cfg(unix)]
fn watch(
    stop: &Arc<AtomicBool>,
    second: &Arc<AtomicBool>,
    caught: &Arc<AtomicI32>,
    drain: &Arc<Drain>,
) -> Option<signal_hook::iterator::Handle> {
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let handle = signals.handle();
            let (stop, second, caught, drain) =
                (stop.clone(), second.clone(), caught.clone(), drain.clone());
            let main_thread = std::thread::current();
            let spawned = std::thread::Builder::new()
                .name("sprint-main-signals".into())
                .spawn(move || {
                    let _ = drain.watcher.set(std::thread::current());
                    if let Some(sig) = signals.forever().next() {
                        caught.store(sig, SeqCst);
                        second.store(true, SeqCst);
                        on_first_signal(sig, &drain, &stop, &main_thread);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("sprint: cannot start the signal thread ({e}); SIGINT/SIGTERM will not shut down gracefully");
            }
            Some(handle)
        }
        Err(e) => {
            eprintln!("sprint: cannot handle SIGINT/SIGTERM ({e}); they will end the process without a graceful shutdown");
            None
        }
    }
}

/// Ends the Windows watcher.
#[cfg(not(unix))]
#[derive(Debug)]
struct Watcher(Arc<AtomicBool>);

#[cfg(not(unix))]
impl Watcher {
    fn close(&self) {
        self.0.store(true, SeqCst);
    }
}

/// Windows has no signal iterator: signal-hook's flags record Ctrl-C
/// (SIGINT) and SIGTERM, and a thread looks at them every 20 ms.
#[cfg(not(unix))]
fn watch(
    stop: &Arc<AtomicBool>,
    second: &Arc<AtomicBool>,
    caught: &Arc<AtomicI32>,
    drain: &Arc<Drain>,
) -> Option<Watcher> {
    let flags = [SIGINT, SIGTERM].map(|sig| {
        let f = Arc::new(AtomicBool::new(false));
        (sig, signal_hook::flag::register(sig, f.clone()).map(|_| f))
    });
    let mut watched = Vec::new();
    for (sig, f) in flags {
        match f {
            Ok(f) => watched.push((sig, f)),
            Err(e) => eprintln!("sprint: cannot handle signal {sig} ({e}); it will end the process without a graceful shutdown"),
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let (stop, second, caught, done2, drain) = (
        stop.clone(),
        second.clone(),
        caught.clone(),
        done.clone(),
        drain.clone(),
    );
    let main_thread = std::thread::current();
    let spawned = std::thread::Builder::new()
        .name("sprint-main-signals".into())
        .spawn(move || {
            let _ = drain.watcher.set(std::thread::current());
            while !done2.load(SeqCst) {
                if let Some((sig, _)) = watched.iter().find(|(_, f)| f.load(SeqCst)) {
                    caught.store(*sig, SeqCst);
                    second.store(true, SeqCst);
                    on_first_signal(*sig, &drain, &stop, &main_thread);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
    if let Err(e) = spawned {
        eprintln!(
            "sprint: cannot start the signal thread ({e}); signals will not shut down gracefully"
        );
        return None;
    }
    Some(Watcher(done))
}

/// Runs a test body on a fresh runtime (Basic unless the attribute says
/// otherwise; the environment is not read, so tests do not change with it).
pub fn run_test<F: Future>(options: MainOptions, body: F) -> F::Output {
    let mut o = options;
    if o.level.is_none() {
        o.level = Some(Level::Basic);
    }
    if o.start_paused {
        o.workers = Some(1);
    }
    let rt = builder(o, false)
        .build()
        .unwrap_or_else(|e| panic!("sprint::test: cannot start the runtime: {e}"));
    if o.start_paused {
        return rt.block_on(async {
            crate::time::pause().unwrap_or_else(|e| panic!("sprint::test: start_paused: {e}"));
            body.await
        });
    }
    rt.block_on(body)
}
