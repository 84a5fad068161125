//! Observability: histogram merging against an exact computation, the
//! stall detector naming a blocking task, health seeing a worker's
//! affinity and scheduling class changed from outside, the `/metrics`
//! text from the real server, and the Grafana dashboard's queries naming
//! metrics that exist.

mod common;

use sprint::config::{Pinning, RtPolicy};
use sprint::metrics::{hist, Problem};
use sprint::{Builder, Level, Runtime};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn rt(level: Level, workers: usize, f: impl FnOnce(&mut sprint::Config) + 'static) -> Runtime {
    Builder::new()
        .level(level)
        .read_env(false)
        .workers(workers)
        .configure(move |c| {
            c.rt_policy = RtPolicy::None;
            f(c)
        })
        .build()
        .unwrap()
}

/// A small deterministic generator (xorshift), so failures reproduce.
fn samples(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Log-uniform from 1 ns to about 1 s.
            let exp = x % 30;
            (1u64 << exp) + (x >> 34) % (1u64 << exp)
        })
        .collect()
}

/// The value of rank ⌈q·n⌉ in `sorted`.
fn exact(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[test]
fn merged_histograms_agree_with_an_exact_computation() {
    let rt = rt(Level::Standard, 2, |_| {});
    let h = sprint::metrics::histogram("merge_check", "merging test").unwrap();
    let all = samples(50_000, 0x9e37_79b9_7f4a_7c15);
    // Recorded from both workers and from this thread, in three parts.
    let parts: Vec<Vec<u64>> = all.chunks(all.len() / 3 + 1).map(|c| c.to_vec()).collect();
    rt.block_on(async {
        let mut joins = Vec::new();
        for (i, part) in parts.iter().take(2).cloned().enumerate() {
            let h = h.clone();
            joins.push(sprint::spawn_on(i, async move {
                for v in part {
                    h.record_ns(v);
                }
            }));
        }
        for j in joins {
            j.unwrap().await.unwrap();
        }
    });
    for v in &parts[2] {
        h.record_ns(*v);
    }
    let snap = h.snapshot();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    assert_eq!(snap.count(), all.len() as u64);
    assert_eq!(snap.sum, all.iter().sum::<u64>());
    assert_eq!(snap.max, *sorted.last().unwrap());
    for q in [0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
        let e = exact(&sorted, q);
        let got = snap.quantile(q);
        // The same bucket as the exact value, reported as its end.
        assert_eq!(
            got,
            hist::bounds(hist::index(e)).1.min(snap.max),
            "q {q}: exact {e}"
        );
        assert!(got >= e && got - e <= e / 16, "q {q}: {got} vs exact {e}");
    }
    // Merging snapshots is adding them: the parts merged equal the whole.
    let mut merged = hist::Snapshot::empty();
    for part in &parts {
        let one = hist::AtomicHistogram::new();
        for v in part {
            one.record_single_writer(*v);
        }
        merged.merge(&one.snapshot());
    }
    assert_eq!(merged, snap);
}

#[test]
fn a_blocking_task_is_reported_as_a_stall_by_name() {
    // Capture what is logged.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let b2 = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || b2.clone())
        .with_ansi(false)
        .finish();
    // Workers log from their own threads: the subscriber must be global
    // (only this test in this binary installs one).
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = rt(Level::Standard, 1, |c| c.stall_threshold_us = 20_000);
    assert!(rt.health().is_empty(), "{:?}", rt.health());
    rt.block_on(async {
        sprint::task::Builder::new()
            .name("deliberately-blocking")
            .spawn(async {
                // The stall under test: a poll that blocks its thread.
                std::thread::sleep(Duration::from_millis(100));
            })
            .await
            .unwrap();
    });
    let stats = rt.stats();
    assert_eq!(stats.stalls, 1, "{stats:?}");
    let last = stats.last_stall.clone().unwrap();
    assert!(last.contains("deliberately-blocking"), "{last}");
    assert!(
        last.contains("metrics.rs"),
        "names where it was spawned: {last}"
    );
    assert!(
        rt.health()
            .iter()
            .any(|p| matches!(p, Problem::Stalls { count: 1, last } if last.contains("deliberately-blocking"))),
        "{:?}",
        rt.health()
    );
    assert!(stats.histograms["task_poll"].max_ns >= 100_000_000);
    drop(rt);
    let logged = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("stall") && logged.contains("deliberately-blocking"),
        "the log names it: {logged}"
    );
}

#[test]
fn a_poll_in_progress_past_the_threshold_is_reported() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let rt = rt(Level::Standard, 1, |c| c.stall_threshold_us = 10_000);
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let h = rt.spawn(async move {
        // The poll under test: it blocks its thread until released (or
        // 20 s, so a failing test ends).
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while !r.load(SeqCst) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut health = Vec::new();
    common::wait_until(
        Duration::from_secs(10),
        "health reports the poll stuck for 50 ms",
        || {
            health = rt.health();
            health
                .iter()
                .any(|p| matches!(p, Problem::StuckPoll { worker: 0, millis, .. } if *millis >= 50))
        },
    );
    release.store(true, SeqCst);
    rt.block_on(h).unwrap();
}

#[test]
fn health_sees_affinity_and_scheduling_changed_from_outside() {
    let rt = rt(Level::Standard, 1, |c| {
        c.pinning = Pinning::Always;
        c.cpus = Some("0".parse().unwrap());
    });
    assert!(rt.health().is_empty(), "{:?}", rt.health());
    let tid = rt.handle().worker_thread_ids()[0];
    // Someone widens the worker's affinity.
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET on a zeroed set with CPU ids below CPU_SETSIZE.
    unsafe {
        libc::CPU_SET(0, &mut set);
        libc::CPU_SET(1, &mut set);
    }
    // SAFETY: a valid set for one of this process's threads.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(r, 0);
    let health = rt.health();
    assert!(
        health.iter().any(
            |p| matches!(p, Problem::AffinityDrift { worker: 0, cpu: 0, now } if now == &[0, 1])
        ),
        "{health:?}"
    );
    // And moves it to SCHED_BATCH (no privilege needed to lower it).
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: a valid parameter for one of this process's threads.
    let r = unsafe { libc::sched_setscheduler(tid, libc::SCHED_BATCH, &p) };
    assert_eq!(r, 0);
    let health = rt.health();
    assert!(
        health.iter().any(|p| matches!(
            p,
            Problem::SchedulingDrift { worker: 0, now_policy, .. } if *now_policy == libc::SCHED_BATCH
        )),
        "{health:?}"
    );
    // Each problem says what it is in words.
    assert!(health.iter().all(|p| !p.to_string().is_empty()));
}

/// The task counts are current while a worker is busy: it spawns and joins
/// 1,000 tasks and then keeps its thread (it never goes idle, and its last
/// maintenance turn may be many polls back) until the stats, read from
/// this thread, show all of them.
#[test]
fn stats_are_current_while_a_worker_is_busy() {
    use std::sync::atomic::{AtomicBool, Ordering::*};
    use std::sync::Arc;
    let rt = rt(Level::Standard, 1, |_| {});
    let seen = Arc::new(AtomicBool::new(false));
    let s2 = seen.clone();
    let busy = rt
        .handle()
        .spawn_on(0, async move {
            let mut v = Vec::with_capacity(1000);
            for i in 0..1000u64 {
                v.push(sprint::spawn_local(async move { i }));
            }
            for j in v {
                j.await.unwrap();
            }
            let until = std::time::Instant::now() + Duration::from_secs(30);
            while !s2.load(Acquire) && std::time::Instant::now() < until {
                std::thread::yield_now();
            }
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut s = rt.stats();
    while (s.tasks.completed < 1000 || s.tasks.spawned < 1001)
        && std::time::Instant::now() < deadline
    {
        std::thread::yield_now();
        s = rt.stats();
    }
    let busy_meanwhile = !seen.swap(true, AcqRel);
    rt.block_on(busy).unwrap();
    assert!(busy_meanwhile);
    assert!(
        s.tasks.completed >= 1000 && s.tasks.spawned >= 1001,
        "counts behind while the worker was busy: {:?}",
        s.tasks
    );
    assert!(s.workers[0].polls >= 1000, "{:?}", s.workers[0]);
}

#[test]
fn stats_count_tasks_and_serialise() {
    let rt = rt(Level::Standard, 2, |_| {});
    rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..100u64 {
            v.push(sprint::spawn(async move {
                // A timer to fire: timer_lateness is counted below.
                sprint::time::sleep(Duration::from_millis(1)).await;
                i
            }));
        }
        for j in v {
            j.await.unwrap();
        }
    });
    // A task's completion is counted as its cell is released, which may
    // follow its JoinHandle's wake by a moment: wait for the count.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut s = rt.stats();
    while s.tasks.completed < 100 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        s = rt.stats();
    }
    assert_eq!(s.level, Level::Standard);
    assert!(
        s.tasks.spawned >= 100 && s.tasks.completed >= 100,
        "{:?}",
        s.tasks
    );
    assert_eq!(s.workers.len(), 2);
    assert!(s.histograms["schedule_delay"].count >= 100);
    assert!(s.histograms["timer_lateness"].count >= 1);
    assert!(s.workers.iter().all(|w| w.thread.is_some()));
    assert!(s.memory.rss > 0);
    let json = serde_json::to_value(&s).unwrap();
    for k in [
        "level",
        "applied",
        "workers",
        "tasks",
        "memory",
        "histograms",
        "stalls",
    ] {
        assert!(json.get(k).is_some(), "{k} in {json}");
    }
}

#[test]
fn io_latency_is_recorded_on_both_drivers() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let mut drivers = vec![sprint::config::IoDriver::Epoll];
    match sprint::net_driver_probe() {
        Ok(()) => drivers.push(sprint::config::IoDriver::Uring),
        Err(why) => common::skip("uring", format!("the io_uring half: {why}")),
    }
    for d in drivers {
        let rt = rt(Level::Standard, 1, move |c| c.io_driver = d);
        let waiting = Arc::new(AtomicBool::new(false));
        let w = waiting.clone();
        rt.block_on(async {
            let l = sprint::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let server = sprint::spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 4];
                // The first read waits (the client writes only once it
                // has): an I/O wait to time.
                let mut got = {
                    use std::future::Future;
                    let mut first = std::pin::pin!(s.read(&mut b));
                    std::future::poll_fn(|cx| {
                        let r = first.as_mut().poll(cx);
                        if r.is_pending() {
                            w.store(true, SeqCst);
                        }
                        r
                    })
                    .await
                    .unwrap()
                };
                while got < 4 {
                    let n = s.read(&mut b[got..]).await.unwrap();
                    assert!(n > 0);
                    got += n;
                }
                s.write_all(&b).await.unwrap();
            });
            let c = sprint::net::TcpStream::connect(addr).await.unwrap();
            common::wait_until_async(Duration::from_secs(10), "the server's read waits", || {
                waiting.load(SeqCst)
            })
            .await;
            c.write_all(b"ping").await.unwrap();
            let mut b = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                let n = c.read(&mut b[got..]).await.unwrap();
                assert!(n > 0);
                got += n;
            }
            server.await.unwrap();
        });
        let io = rt.stats().histograms["io_latency"];
        assert!(io.count >= 1, "{d}: {io:?}");
    }
}

/// GET over a plain socket (the test needs no HTTP client crate).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn metrics_are_served_in_openmetrics_text() {
    let rt = rt(Level::Standard, 1, |c| {
        c.metrics_addr = Some("127.0.0.1:0".into())
    });
    let addr = rt.metrics_addr().unwrap();
    let c = sprint::metrics::counter("served_requests", "test counter").unwrap();
    c.add(3);
    rt.block_on(async { sprint::spawn(async {}).await.unwrap() });
    let (code, body) = http_get(addr, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "# TYPE sprint_task_poll_duration_seconds histogram",
        "sprint_task_poll_duration_seconds_bucket{le=\"+Inf\"}",
        "sprint_schedule_delay_seconds_bucket",
        "sprint_io_latency_seconds_bucket",
        "sprint_timer_lateness_seconds_bucket",
        "sprint_stalls_total",
        "sprint_tasks_alive",
        "sprint_memory_rss_bytes",
        "sprint_worker_polls_total{worker=\"0\"}",
        "sprint_worker_busy_ratio{worker=\"0\"}",
        "sprint_served_requests_total 3",
        "sprint_level 1",
        "# EOF",
    ] {
        assert!(body.contains(name), "{name} missing in:\n{body}");
    }
    // Every series is Sprint's, and the buckets double from ≤ 1 µs to ≥ 10 s.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("sprint_"), "{line}");
    }
    let les: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with("sprint_task_poll_duration_seconds_bucket"))
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
        .filter(|v: &f64| v.is_finite())
        .collect();
    assert!(les[0] <= 1e-6 && *les.last().unwrap() >= 10.0, "{les:?}");
    assert!(les.windows(2).all(|w| w[1] <= 2.0 * w[0]), "{les:?}");
    // The cumulative buckets end at the count, for a histogram with samples.
    let h = sprint::metrics::histogram("served_check", "bucket test").unwrap();
    for v in [500u64, 1_500, 3_000_000, 20_000_000_000] {
        h.record_ns(v);
    }
    let (_, body) = http_get(addr, "/metrics");
    let series = |suffix: &str| -> Vec<u64> {
        body.lines()
            .filter(|l| l.starts_with(&format!("sprint_served_check_seconds_{suffix}")))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let buckets = series("bucket");
    assert_eq!(series("count"), [4]);
    assert_eq!(buckets[0], 1, "500 ns is at most 511 ns");
    assert_eq!(
        buckets[buckets.len() - 2],
        3,
        "20 s is above the last bound"
    );
    assert_eq!(*buckets.last().unwrap(), 4);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(http_get(addr, "/nope").0, 404);
}

#[test]
fn a_bad_metrics_address_or_name_is_a_clear_error() {
    let e = Builder::new()
        .read_env(false)
        .configure(|c| c.metrics_addr = Some("localhost:notaport".into()))
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("metrics_addr"), "{e}");
    let e = sprint::metrics::histogram("Bad-Name", "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Bad-Name"), "{e}");
}

#[test]
fn the_dashboard_queries_metrics_that_exist() {
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dashboards/sprint.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let rt = rt(Level::Standard, 1, |c| {
        c.metrics_addr = Some("127.0.0.1:0".into())
    });
    let (_, body) = http_get(rt.metrics_addr().unwrap(), "/metrics");
    let panels = dash["panels"].as_array().unwrap();
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in ["Poll p95", "Memory", "Tasks", "Stalls", "Schedule delay"] {
        assert!(
            titles.iter().any(|t| t.starts_with(want)),
            "{want} in {titles:?}"
        );
    }
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("sprint_"))
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for n in names {
                assert!(body.contains(n), "{n} (in {expr}) is not served");
            }
        }
    }
}
