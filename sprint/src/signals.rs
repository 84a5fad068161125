//! What `#[sprint::main]` and `#[sprint::test]` expand to.
//!
//! `run_main` turns SIGINT and SIGTERM into a graceful shutdown: the main
//! future is dropped, every task is cancelled, the workers are joined
//! within the configured deadline, and the process exits with 128 + the
//! signal number. (The default SIGTERM action would end the process
//! without running a single `Drop`, and so without restoring anything the
//! runtime changed.) A second signal during shutdown exits at once.

use crate::{Builder, Level};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::*};
use std::sync::Arc;

/// The options of the attributes, as the macro read them.
#[derive(Debug, Clone, Copy)]
pub struct MainOptions {
    /// `level = "…"`.
    pub level: Option<Level>,
    /// `workers = N`.
    pub workers: Option<usize>,
    /// `config = "…"`.
    pub config: Option<&'static str>,
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
    b
}

fn init_logging() {
    if std::env::var_os("SPRINT_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_env("SPRINT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
}

/// Builds the runtime (exiting with status 2 and the reason if it cannot),
/// runs `body` on it, and handles SIGINT and SIGTERM.
pub fn run_main<F: Future>(options: MainOptions, body: F) -> F::Output {
    init_logging();
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
    let watcher = watch(&stop, &second, &caught);
    let out = rt.handle().block_on_or_stop(body, &stop);
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
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
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
) -> Option<signal_hook::iterator::Handle> {
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let handle = signals.handle();
            let (stop, second, caught) = (stop.clone(), second.clone(), caught.clone());
            let main_thread = std::thread::current();
            let spawned = std::thread::Builder::new()
                .name("sprint-signals".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        caught.store(sig, SeqCst);
                        second.store(true, SeqCst);
                        stop.store(true, SeqCst);
                        main_thread.unpark();
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
    let (stop, second, caught, done2) =
        (stop.clone(), second.clone(), caught.clone(), done.clone());
    let main_thread = std::thread::current();
    let spawned = std::thread::Builder::new()
        .name("sprint-signals".into())
        .spawn(move || {
            while !done2.load(SeqCst) {
                if let Some((sig, _)) = watched.iter().find(|(_, f)| f.load(SeqCst)) {
                    caught.store(*sig, SeqCst);
                    second.store(true, SeqCst);
                    stop.store(true, SeqCst);
                    main_thread.unpark();
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
    let rt = builder(o, false)
        .build()
        .unwrap_or_else(|e| panic!("sprint::test: cannot start the runtime: {e}"));
    rt.block_on(body)
}
