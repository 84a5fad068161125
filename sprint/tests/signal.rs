//! `sprint::signal` and `sprint::shutdown` with real signals, each case in
//! a child process (a signal handler, once installed, stays for the life
//! of the process): every waiter on every worker wakes, a `Signal`
//! receives again and again, a signal sent before the first poll is not
//! lost, signals that cannot be caught are refused with the reason, and
//! under `#[sprint::main]` a program that watches the shutdown token
//! drains and returns its value.

mod common;

use common::run_child;
use sprint::signal::{self, SignalError, SignalKind};
use sprint::{Builder, Level, Runtime};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const CHILD: &str = "SIGNAL_TEST_CHILD";

fn rt(workers: usize) -> Runtime {
    Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(workers)
        .build()
        .expect("a runtime")
}

fn raise(sig: i32) {
    // SAFETY: sends a signal to this process; Sprint's handler (installed
    // before) only writes to its pipe.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// Runs `case` in a child, where `name` is this test's own name.
fn in_child(name: &str, case: fn()) {
    if std::env::var_os(CHILD).is_some() {
        return case();
    }
    let out = run_child(name, CHILD, "1");
    assert!(out.contains("child: ok"), "{out}");
}

#[test]
fn every_waiter_on_every_worker_wakes_on_one_signal() {
    in_child("every_waiter_on_every_worker_wakes_on_one_signal", || {
        let rt = rt(2);
        let woke = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let mut handles = Vec::new();
            for i in 0..8 {
                let woke = woke.clone();
                // Made here, before the signal: none may miss it.
                let usr1 = signal::recv(SignalKind::user_defined1());
                handles.push(
                    sprint::spawn_on(i % 2, async move {
                        usr1.await.unwrap();
                        woke.fetch_add(1, SeqCst);
                    })
                    .unwrap(),
                );
            }
            // Waits made on the workers, polled before the signal.
            let polled = Arc::new(AtomicUsize::new(0));
            for i in 0..2 {
                let (woke, polled) = (woke.clone(), polled.clone());
                handles.push(
                    sprint::spawn_on(i, async move {
                        let usr1 = signal::recv(SignalKind::user_defined1());
                        let mut usr1 = std::pin::pin!(usr1);
                        std::future::poll_fn(|cx| {
                            use std::future::Future;
                            let r = usr1.as_mut().poll(cx);
                            if r.is_pending() {
                                polled.fetch_add(1, SeqCst);
                            }
                            r
                        })
                        .await
                        .unwrap();
                        woke.fetch_add(1, SeqCst);
                    })
                    .unwrap(),
                );
            }
            common::wait_until_async(Duration::from_secs(10), "both workers wait", || {
                polled.load(SeqCst) >= 2
            })
            .await;
            raise(libc::SIGUSR1);
            for h in handles {
                sprint::time::timeout(Duration::from_secs(10), h)
                    .await
                    .expect("every waiter wakes")
                    .unwrap();
            }
        });
        assert_eq!(woke.load(SeqCst), 10);
        println!("child: ok");
    });
}

#[test]
fn a_signal_receives_every_delivery_in_turn_and_ctrl_c_is_sigint() {
    in_child(
        "a_signal_receives_every_delivery_in_turn_and_ctrl_c_is_sigint",
        || {
            let rt = rt(1);
            rt.block_on(async {
                let mut hup = signal::signal(SignalKind::hangup()).unwrap();
                for _ in 0..3 {
                    raise(libc::SIGHUP);
                    sprint::time::timeout(Duration::from_secs(10), hup.recv())
                        .await
                        .expect("each SIGHUP is received")
                        .expect("never None");
                }
                // Nothing arrived since the last receive: it waits.
                assert!(sprint::time::timeout(Duration::from_millis(50), hup.recv())
                    .await
                    .is_err());
                let c = signal::ctrl_c();
                raise(libc::SIGINT);
                sprint::time::timeout(Duration::from_secs(10), c)
                    .await
                    .expect("ctrl_c sees SIGINT")
                    .unwrap();
                // A handler installed, SIGINT no longer ends the process:
                // this line runs.
                assert!(!sprint::shutdown::is_shutting_down());
            });
            println!("child: ok");
        },
    );
}

#[test]
fn a_signal_before_the_first_poll_is_not_lost() {
    in_child("a_signal_before_the_first_poll_is_not_lost", || {
        let rt = rt(1);
        let term = signal::recv(SignalKind::terminate());
        raise(libc::SIGTERM);
        rt.block_on(async {
            sprint::time::timeout(Duration::from_secs(10), term)
                .await
                .expect("the earlier SIGTERM completes it")
                .unwrap();
        });
        println!("child: ok");
    });
}

#[test]
fn signals_that_cannot_be_caught_are_refused_with_the_reason() {
    // Refused before anything is installed: safe in this process.
    let rt = rt(1);
    rt.block_on(async {
        for (sig, want) in [
            (libc::SIGKILL, "cannot or must not catch"),
            (libc::SIGSEGV, "cannot or must not catch"),
            (0, "from 1 to 64"),
            (1000, "from 1 to 64"),
        ] {
            match signal::recv(SignalKind::from_raw(sig)).await {
                Err(SignalError::Refused { signum, why }) => {
                    assert_eq!(signum, sig);
                    assert!(why.contains(want), "{why}");
                }
                other => panic!("signal {sig}: {other:?}"),
            }
            assert!(signal::signal(SignalKind::from_raw(sig)).is_err());
        }
    });
}

#[test]
fn the_shutdown_token_wakes_every_waiter_and_stays_requested() {
    in_child(
        "the_shutdown_token_wakes_every_waiter_and_stays_requested",
        || {
            let rt = rt(2);
            rt.block_on(async {
                assert!(!sprint::shutdown::is_shutting_down());
                let waiters: Vec<_> = (0..4)
                    .map(|i| {
                        sprint::spawn_on(i % 2, async { sprint::shutdown::requested().await })
                            .unwrap()
                    })
                    .collect();
                sprint::shutdown::request();
                for h in waiters {
                    sprint::time::timeout(Duration::from_secs(10), h)
                        .await
                        .expect("every waiter wakes")
                        .unwrap();
                }
                assert!(sprint::shutdown::is_shutting_down());
                // Made after the request: ready at once.
                sprint::time::timeout(Duration::from_secs(1), sprint::shutdown::requested())
                    .await
                    .expect("already requested");
            });
            println!("child: ok");
        },
    );
}

#[test]
fn under_main_a_program_that_watches_drains_and_returns_its_value() {
    in_child(
        "under_main_a_program_that_watches_drains_and_returns_its_value",
        || {
            let options = sprint::__private::MainOptions {
                level: Some(Level::Basic),
                workers: Some(1),
                ..Default::default()
            };
            // What `#[sprint::main]` expands to, with no `drain` option:
            // the program watches the token, so it gets the drain phase
            // instead of being cancelled.
            let out = sprint::__private::run_main(options, async {
                let stop = sprint::shutdown::requested();
                raise(libc::SIGTERM);
                sprint::time::timeout(Duration::from_secs(10), stop)
                    .await
                    .expect("SIGTERM requests shutdown");
                42
            });
            assert_eq!(out, 42);
            println!("child: ok");
        },
    );
}
