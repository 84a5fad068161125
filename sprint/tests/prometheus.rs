//! A real Prometheus (Debian's `prometheus` package; ci/setup.sh installs
//! it) scrapes Sprint's `/metrics` on loopback with a generated config, and
//! `histogram_quantile(0.95, rate(sprint_…_bucket[1m]))` through its HTTP
//! API must fall inside the exported bucket that holds the p95 `Stats`
//! reports for the same samples.

use sprint::config::RtPolicy;
use sprint::metrics::hist;
use sprint::{Builder, Level};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    // Prometheus answers small bodies whole; a chunked one is unwrapped.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut rest = body;
        let mut out = String::new();
        while let Some((len, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            rest = tail.get(n + 2..)?;
        }
        out
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of an instant query, if it has one.
fn query(prom: SocketAddr, q: &str) -> Option<f64> {
    let (code, body) = http_get(prom, &format!("/api/v1/query?query={}", encode(q)))?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills Prometheus when the test ends, however it ends.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_and_its_p95_falls_in_the_bucket_of_the_stats_p95() {
    let bin = std::env::var("PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    assert!(
        std::path::Path::new(&bin).exists(),
        "Prometheus is not installed at {bin}: install Debian's `prometheus` package (ci/setup.sh does) or set PROMETHEUS"
    );
    let rt = Builder::new()
        .level(Level::Standard)
        .read_env(false)
        .workers(1)
        .configure(|c| {
            c.rt_policy = RtPolicy::None;
            c.metrics_addr = Some("127.0.0.1:0".into());
        })
        .build()
        .unwrap();
    let target = rt.metrics_addr().unwrap();
    // Exists (empty) before the first scrape, so that rate() sees it grow.
    let h = sprint::metrics::histogram("prom_check", "samples for the Prometheus test").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: sprint\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let prom: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _p = Prometheus(
        Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("Prometheus to be ready", 60, || {
        http_get(prom, "/-/ready").filter(|(c, _)| *c == 200)
    });
    wait_for("the first scrape", 60, || {
        query(prom, "sprint_prom_check_seconds_count{job=\"sprint\"}").filter(|v| *v == 0.0)
    });

    // The samples: log-uniform from 10 µs to about 100 ms, deterministic.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let n = 20_000;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let exp = 13 + x % 14;
        h.record_ns((1u64 << exp) + (x >> 40) % (1u64 << exp));
    }
    wait_for("a scrape with every sample", 60, || {
        query(prom, "sprint_prom_check_seconds_count").filter(|v| *v == n as f64)
    });
    let promql = "histogram_quantile(0.95, rate(sprint_prom_check_seconds_bucket[1m]))";
    let got = wait_for("the quantile", 30, || {
        query(prom, promql).filter(|v| v.is_finite())
    });

    let p95 = rt.stats().histograms["prom_check"].p95_ns;
    let bounds: Vec<u64> = hist::export_bounds().collect();
    let hi = *bounds.iter().find(|b| **b >= p95).unwrap();
    let lo = bounds
        .iter()
        .rev()
        .find(|b| **b < p95)
        .copied()
        .unwrap_or(0);
    let got_ns = got * 1e9;
    if std::env::var_os("PROM_DEBUG").is_some() {
        let (_, body) = http_get(target, "/metrics").unwrap();
        for l in body.lines().filter(|l| l.contains("prom_check")) {
            eprintln!("{l}");
        }
    }
    assert!(
        got_ns >= lo as f64 - 1.0 && got_ns <= hi as f64 + 1.0,
        "Prometheus says {got} s; Stats says p95 = {p95} ns, in the exported bucket ({lo}, {hi}] ns"
    );
    // And it scraped the built-in histograms too.
    assert!(query(prom, "sprint_task_poll_duration_seconds_count").is_some());
}
