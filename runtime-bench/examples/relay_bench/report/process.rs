//! The relay as a child process, for the `report` and `step` modes: the
//! server binary (`--relay-bin`) started with `--cpu 0` (its runtime's
//! thread pinned there, the same way for each: Sprint's worker, tokio's
//! and monoio's thread, glommio's executor) at a Sprint level, on tokio,
//! monoio or glommio, or with the adaptive controller; its CPU time, page faults and resident
//! memory read from /proc; and stopping it with SIGTERM to collect the
//! JSON lines it printed (its allocation marks and its summary).

use crate::ReportArgs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// (utime + stime in seconds, minor faults) of a process.
pub fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((ticks / hz, f.get(7)?.parse().ok()?))
}

/// Seconds the threads of a process pinned to CPU 0 alone (the server's
/// runtime thread: its signal thread, and Sprint's main thread and
/// blocking pool, run elsewhere or anywhere and would count the
/// generator's own turns) have spent runnable but waiting for a CPU (the
/// second field of each thread's `schedstat`), or `None` if the kernel
/// does not say.
pub fn run_queue_wait_s(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let t = t.ok()?.path();
        let status = std::fs::read_to_string(t.join("status")).unwrap_or_default();
        let on_cpu0 = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .is_some_and(|v| v.trim() == "0");
        if !on_cpu0 {
            continue;
        }
        let s = std::fs::read_to_string(t.join("schedstat")).ok()?;
        ns += s.split_whitespace().nth(1)?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// A process's resident memory, MB (0 if unknown).
pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A running relay server; killed when dropped.
pub struct Server(pub Child);

impl Server {
    /// SIGTERM, then everything it printed (its last line is its
    /// summary).
    pub fn stop(&mut self) -> String {
        // SAFETY: a signal to our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let mut out = String::new();
        if let Some(o) = self.0.stdout.as_mut() {
            let _ = o.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `server` (`tokio`, `monoio`, `glommio`, `turbo-nort`,
/// `adaptive` or a level; a level with `:wN` runs the relay on N Sprint
/// workers pinned to CPUs 0, 1, … in turn, sharing them with the
/// generator's) with
/// publishers on `port` and subscribers on `port + 1`, and waits until it
/// takes subscribers.
pub fn start(r: &ReportArgs, server: &str, port: u16) -> std::io::Result<Server> {
    let mut c = Command::new(&r.relay_bin);
    c.args(["--cpu", "0", "--decode", &r.decode])
        .args(["--publishers", &format!("127.0.0.1:{port}")])
        .args(["--subscribers", &format!("127.0.0.1:{}", port + 1)])
        .stdout(Stdio::piped());
    // What it says on stderr goes to a file, read back if it fails to
    // start (it says why: a runtime it was built without, say).
    let dir = if r.out.is_empty() {
        std::env::temp_dir()
    } else {
        std::path::PathBuf::from(&r.out)
    };
    let log = dir.join(format!("server-{server}.log"));
    // A session of its own, so a scheduler autogroup of its own: with
    // `kernel.sched_autogroup_enabled`, threads of one session share one
    // group's weight across the CPUs, and a server thread spinning at
    // nice -15 on CPU 0 (Turbo's worker) left the generator on CPU 1
    // about 3 % of that CPU whenever another session ran there (the
    // generator measured 0.03 cores at Turbo, 0.12 at Enterprise's nice
    // -10, against 0.35 beside the other servers).
    // SAFETY: between fork and exec only setsid, which is
    // async-signal-safe, runs; it allocates nothing and takes no lock.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.stderr(std::fs::File::create(&log).map_or_else(|_| Stdio::null(), Stdio::from));
    match server {
        "tokio" | "monoio" | "glommio" => c.args(["--runtime", server]),
        "turbo-nort" => c.args(["--runtime", "sprint", "--level", "turbo", "--no-rt"]),
        // Between Basic and Turbo, on the relay's own latency.
        "adaptive" => c
            .args(["--runtime", "sprint", "--level", "basic"])
            .env("SPRINT_ADAPTIVE", "true")
            .env("SPRINT_ADAPTIVE_OBJECTIVE", "relay_latency p99 < 50us")
            .env("SPRINT_ADAPTIVE_MIN_LEVEL", "basic")
            .env("SPRINT_ADAPTIVE_MAX_LEVEL", "turbo"),
        level => match level.split_once(":w") {
            Some((level, n)) => {
                let n: usize = n.parse().map_err(|_| {
                    std::io::Error::other(format!("{server}: workers after :w must be a number"))
                })?;
                // SAFETY: sysconf has no preconditions.
                let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
                let cpus: Vec<String> = (0..n).map(|i| (i % online).to_string()).collect();
                c.args(["--runtime", "sprint", "--level", level]).args([
                    "--workers",
                    &n.to_string(),
                    "--cpus",
                    &cpus.join(","),
                ])
            }
            None => c.args(["--runtime", "sprint", "--level", level]),
        },
    };
    let mut child = Server(c.spawn().map_err(|e| {
        std::io::Error::other(format!(
            "cannot start {} (build it: cargo build --release -p sprint-relay --features monoio,glommio): {e}",
            r.relay_bin
        ))
    })?);
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port + 1)).is_err() {
        if let Ok(Some(status)) = child.0.try_wait() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "{server} exited before listening ({status}): {}",
                said.trim()
            )));
        }
        if Instant::now() > until {
            return Err(std::io::Error::other(format!(
                "{server} did not start listening"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}
