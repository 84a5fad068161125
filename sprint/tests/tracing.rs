//! Sprint and `tracing`: the runtime installs no global subscriber unless
//! asked (so a program's own `tracing_subscriber::fmt().init()` works with
//! `SPRINT_LOG` set); `task_spans` runs each poll inside a span naming the
//! task; the mimalloc notice is not logged at `info` unless the program
//! asked for mimalloc. A global subscriber is process-wide: each case runs
//! in a child process.

use sprint::__private::{run_main, MainOptions};
use sprint::{Builder, Level};
use std::io::Write;
use std::sync::{Arc, Mutex};

const CHILD: &str = "TRACING_TEST_CHILD";

fn options(log: bool) -> MainOptions {
    MainOptions {
        level: Some(Level::Basic),
        workers: Some(1),
        config: None,
        drain_ms: None,
        log,
        start_paused: false,
    }
}

/// Runs `case` in a child process with `SPRINT_LOG=debug` set.
fn in_child(name: &str, case: fn()) {
    if std::env::var_os(CHILD).is_some() {
        return case();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("SPRINT_LOG", "debug")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_program_installs_its_own_subscriber_with_sprint_log_set() {
    in_child(
        "the_program_installs_its_own_subscriber_with_sprint_log_set",
        || {
            // What `#[sprint::main] async fn main() { fmt().init(); … }`
            // expands to. It panicked when Sprint installed one first.
            run_main(options(false), async {
                tracing_subscriber::fmt().init();
            });
            println!("child: ok");
        },
    );
}

#[test]
fn log_true_installs_one_only_where_none_is_set() {
    in_child("log_true_installs_one_only_where_none_is_set", || {
        assert!(!tracing::dispatcher::has_been_set());
        run_main(options(true), async {
            assert!(tracing::dispatcher::has_been_set(), "asked for: installed");
            assert!(tracing_subscriber::fmt().try_init().is_err());
        });
        // Set already: asking again changes nothing and does not panic.
        assert!(!sprint::install_log_subscriber());
        run_main(options(true), async {});
        println!("child: ok");
    });
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn task_spans_name_the_task_in_every_event_of_its_polls() {
    in_child(
        "task_spans_name_the_task_in_every_event_of_its_polls",
        || {
            let buf = Buffer::default();
            tracing_subscriber::fmt()
                .with_writer(buf.clone())
                .with_ansi(false)
                .init();
            for spans in [false, true] {
                let rt = Builder::new()
                    .level(Level::Basic)
                    .read_env(false)
                    .workers(1)
                    .configure(move |c| c.task_spans = spans)
                    .build()
                    .unwrap();
                let id = rt.block_on(async move {
                    let h = sprint::task::Builder::new()
                        .name("relay")
                        .spawn(async move {
                            tracing::info!(spans, "inside the task");
                            sprint::yield_now().await;
                            tracing::info!(spans, "after a yield");
                        });
                    let id = h.id();
                    h.await.unwrap();
                    id
                });
                let text = buf.text();
                let want = format!("task{{id={id} name=\"relay\"}}");
                for event in ["inside the task", "after a yield"] {
                    let line = text
                        .lines()
                        .find(|l| l.contains(event) && l.contains(&format!("spans={spans}")))
                        .unwrap_or_else(|| panic!("no {event:?} in {text}"));
                    assert_eq!(line.contains(&want), spans, "{want} in {line:?}");
                }
            }
            println!("child: ok");
        },
    );
}

#[test]
fn the_mimalloc_notice_is_only_for_programs_that_asked_for_mimalloc() {
    if std::env::var_os(CHILD).is_some() {
        let level: Level = std::env::var("CASE_LEVEL").unwrap().parse().unwrap();
        let ask = std::env::var("CASE_ASK").unwrap() == "1";
        let rt = Builder::new()
            .level(level)
            .read_env(false)
            .workers(1)
            .configure(move |c| {
                if ask {
                    c.allocator = sprint::config::Allocator::Mimalloc;
                }
            })
            .build()
            .unwrap();
        for line in rt.start_report().memory() {
            println!("memory: {line}");
        }
        return;
    }
    let run = |level: &str, ask: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "the_mimalloc_notice_is_only_for_programs_that_asked_for_mimalloc",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("CASE_LEVEL", level)
            .env("CASE_ASK", ask)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Standard recommends mimalloc; the program never mentioned it.
    let quiet = run("standard", "0");
    assert!(quiet.contains("memory: "), "{quiet}");
    assert!(!quiet.contains("allocator = mimalloc, but"), "{quiet}");
    // Basic does not; the program asked for it in code.
    let told = run("basic", "1");
    assert!(told.contains("allocator = mimalloc, but"), "{told}");
}

#[test]
fn no_subscriber_is_installed_by_a_runtime_or_the_test_attribute() {
    in_child(
        "no_subscriber_is_installed_by_a_runtime_or_the_test_attribute",
        || {
            let rt = Builder::new()
                .level(Level::Basic)
                .read_env(true)
                .workers(1)
                .build()
                .unwrap();
            rt.block_on(async {});
            drop(rt);
            assert!(!tracing::dispatcher::has_been_set());
            println!("child: ok");
        },
    );
}
