//! The relay binary in a real memory cgroup (v1 here; v2 where that is
//! what is mounted), on Sprint and on tokio: 1,000 idle subscribers and
//! 1,000 idle publishers fit in 256 MiB at no more than 64 KiB each, and
//! a connect/close storm on the subscriber port leaves its memory flat
//! while an honest subscriber gets every frame. The child moves itself
//! into a fresh cgroup before it execs the relay, so all of its memory
//! is charged there; the cgroup is removed when the test ends, even by a
//! panic. Loopback only; bounded in count and time.

mod common;

use common::{read_frames, tx};
use sprint_relay::wire;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A memory cgroup made for one child; removed when dropped.
struct Cgroup {
    dir: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// A new cgroup limited to `bytes` (and no swap). Panics if there is
    /// no memory controller or no right to make one: CI runs as root on
    /// a machine with one, and a skipped test would hide a regression.
    fn new(case: &str, bytes: u64) -> Cgroup {
        let name = format!("sprint-relay-{}-{case}", std::process::id());
        let root = Path::new("/sys/fs/cgroup");
        let (dir, v2) = if root.join("cgroup.controllers").exists() {
            let controllers = std::fs::read_to_string(root.join("cgroup.subtree_control"));
            assert!(
                controllers.is_ok_and(|c| c.split_whitespace().any(|x| x == "memory")),
                "cgroup v2 without the memory controller enabled for children"
            );
            (root.join(name), true)
        } else {
            let v1 = root.join("memory");
            assert!(
                v1.join("memory.limit_in_bytes").exists(),
                "no cgroup v1 memory hierarchy at {}",
                v1.display()
            );
            (v1.join(name), false)
        };
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create {} ({e}): not root?", dir.display()));
        let cg = Cgroup { dir, v2 };
        let (limit, swap) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        std::fs::write(cg.dir.join(limit), bytes.to_string()).unwrap();
        // No swap to hide in: the limit is where the kernel kills.
        if cg.dir.join(swap).exists() {
            let _ = std::fs::write(
                cg.dir.join(swap),
                if v2 { "0".into() } else { bytes.to_string() },
            );
        }
        cg
    }

    /// OOM kills in this cgroup so far.
    fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no oom_kill line in {file}: {text}"))
    }

    fn read_bytes(&self, v1: &str, v2: &str) -> Option<u64> {
        let file = if self.v2 { v2 } else { v1 };
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Memory charged to it now.
    fn usage(&self) -> u64 {
        self.read_bytes("memory.usage_in_bytes", "memory.current")
            .expect("the cgroup's usage")
    }

    /// The most memory charged to it so far (v2 kernels before 5.19 have
    /// no memory.peak: then `None`).
    fn peak(&self) -> Option<u64> {
        self.read_bytes("memory.max_usage_in_bytes", "memory.peak")
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The child is gone (killed and waited for by `Relay`'s drop,
        // which runs first); its charges leave with it.
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Raises this process's descriptor limit to its hard limit (the relay
/// inherits it): thousands of connections need thousands of descriptors
/// on each side.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given, which lives here.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit reads the struct it is given; raising the soft
    // limit to the hard one needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur
}

/// A child process, killed and waited for when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The relay binary, running in `cg`; killed and waited for when dropped
/// (before the cgroup is removed: declare it after the cgroup).
struct Relay {
    child: Killed,
    pubs: SocketAddr,
    subs: SocketAddr,
    /// Its stdout, a line at a time (marks and the final JSON line).
    lines: mpsc::Receiver<String>,
}

impl Relay {
    fn start(cg: &Cgroup, runtime: &str) -> Relay {
        let child = Command::new("sh")
            .args([
                "-c",
                r#"echo $$ > "$0/cgroup.procs" && exec "$@""#,
                cg.dir.to_str().unwrap(),
                env!("CARGO_BIN_EXE_sprint-relay"),
            ])
            .args(["--runtime", runtime, "--no-rt", "--seen", "10000"])
            .args(["--publishers", "127.0.0.1:0"])
            .args(["--subscribers", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Killed even if it never says where it listens.
        let mut child = Killed(child);
        let mut err = std::io::BufReader::new(child.0.stderr.take().unwrap());
        let mut line = String::new();
        let (pubs, subs) = loop {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "the relay exited");
            // "relay: publishers on A, subscribers on B"
            if let Some(rest) = line.trim().strip_prefix("relay: publishers on ") {
                let (p, s) = rest.split_once(", subscribers on ").unwrap();
                break (p.parse().unwrap(), s.parse().unwrap());
            }
        };
        // Keep draining its log, so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let out = std::io::BufReader::new(child.0.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Relay {
            child,
            pubs,
            subs,
            lines,
        }
    }

    /// Panics if it has exited (killed by the kernel, most likely).
    fn alive(&mut self, cg: &Cgroup) {
        use std::os::unix::process::ExitStatusExt;
        if let Some(status) = self.child.0.try_wait().unwrap() {
            panic!(
                "the relay died: {status:?} (signal {:?}), {} OOM kills in its cgroup",
                status.signal(),
                cg.oom_kills()
            );
        }
    }

    /// Connects to `addr` of it; panics with its fate if it died.
    fn connect(&mut self, cg: &Cgroup, addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).unwrap_or_else(|e| {
            self.alive(cg);
            panic!("connecting to the relay: {e}")
        })
    }

    /// Its memory sample (SIGUSR1): connections and resident bytes per
    /// connection, once it holds `conns` connections (within `within`).
    fn wait_for(&mut self, cg: &Cgroup, conns: u64, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            self.alive(cg);
            assert!(Instant::now() < deadline, "the relay never held {conns}");
            // SAFETY: kill has no memory preconditions; the pid is our
            // child's, not yet waited for.
            unsafe { libc::kill(self.child.0.id() as i32, libc::SIGUSR1) };
            if let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                if v["connections"].as_u64() == Some(conns) && v["rss_per_connection"] != 0 {
                    return v;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops it (SIGTERM): its counters, after checking that it exited
    /// on its own (not killed by the kernel).
    fn stop(mut self, cg: &Cgroup) -> serde_json::Value {
        use std::os::unix::process::ExitStatusExt;
        // SAFETY: as in `wait_for`.
        unsafe { libc::kill(self.child.0.id() as i32, libc::SIGTERM) };
        let status = self.child.0.wait().unwrap();
        assert_eq!(cg.oom_kills(), 0, "OOM kills in the cgroup");
        assert!(
            status.success(),
            "the relay: {status:?} (signal {:?})",
            status.signal()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let l = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("the relay's final JSON line");
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v.get("counters").is_some() {
                return v["counters"].clone();
            }
        }
    }
}

/// An honest subscriber, registered once the first frame from `p`
/// reaches it.
fn honest_pair(relay: &Relay) -> (TcpStream, TcpStream) {
    let mut sub = TcpStream::connect(relay.subs).unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut p = TcpStream::connect(relay.pubs).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for seq in 0.. {
        // Frames sent before the subscriber was registered are not its:
        // try again until one arrives.
        let (payload, id) = tx(seq, 40);
        p.write_all(&wire::tx_frame(&payload)).unwrap();
        sub.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut b = [0u8; 1];
        if sub.peek(&mut b).is_ok_and(|n| n > 0) {
            sub.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let got = read_frames(&mut sub, 1);
            assert_eq!(got, vec![id]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the honest subscriber never got a frame"
        );
    }
    (sub, p)
}

fn idle(runtime: &str) {
    const EACH: usize = 1_000;
    let nofile = raise_nofile();
    assert!(nofile >= 2 * EACH as u64 + 100, "RLIMIT_NOFILE {nofile}");
    let cg = Cgroup::new(&format!("idle-{runtime}"), 256 * MIB);
    let mut relay = Relay::start(&cg, runtime);
    let mut held = Vec::with_capacity(2 * EACH);
    for _ in 0..EACH {
        let (subs, pubs) = (relay.subs, relay.pubs);
        held.push(relay.connect(&cg, subs));
        held.push(relay.connect(&cg, pubs));
    }
    let sample = relay.wait_for(&cg, 2 * EACH as u64, Duration::from_secs(60));
    let per = sample["rss_per_connection"].as_u64().unwrap();
    let peak = cg.peak();
    let c = relay.stop(&cg);
    drop(held);
    eprintln!(
        "{runtime}: {} connections, {per} B resident each, cgroup peak {:?} MiB",
        c["peak_connections"],
        peak.map(|p| p / MIB)
    );
    assert_eq!(c["peak_connections"], 2 * EACH as u64, "{c}");
    assert!(
        per <= 64 << 10,
        "{runtime}: {per} bytes per idle connection"
    );
    assert!(
        c["rss_per_connection"].as_u64().unwrap() <= 64 << 10,
        "{runtime}: {c}"
    );
}

#[test]
fn a_thousand_idle_subscribers_and_publishers_fit_in_256_mib_on_sprint() {
    idle("sprint");
}

#[cfg(feature = "tokio")]
#[test]
fn a_thousand_idle_subscribers_and_publishers_fit_in_256_mib_on_tokio() {
    idle("tokio");
}

fn storm(runtime: &str) {
    const STORM: usize = 2_000; // 400 a second for 5 s
    const HONEST: u64 = 500; // one every 10 ms
    raise_nofile();
    let cg = Cgroup::new(&format!("storm-{runtime}"), 256 * MIB);
    let relay = Relay::start(&cg, runtime);
    let (mut sub, mut p) = honest_pair(&relay);
    let before = cg.usage();
    let subs = relay.subs;
    let storming = std::thread::spawn(move || {
        let start = Instant::now();
        for i in 0..STORM {
            // The pacing is the load itself: 400 connections a second.
            let due = start + Duration::from_micros(2_500 * i as u64);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            drop(TcpStream::connect(subs).unwrap());
        }
    });
    let sending = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for i in 0..HONEST {
            let (payload, id) = tx(1_000 + i, 40);
            p.write_all(&wire::tx_frame(&payload)).unwrap();
            ids.push(id);
            std::thread::sleep(Duration::from_millis(10));
        }
        (p, ids)
    });
    let got = read_frames(&mut sub, HONEST as usize);
    storming.join().unwrap();
    let (_p, ids) = sending.join().unwrap();
    let peak = cg.peak();
    let after = cg.usage();
    let c = relay.stop(&cg);
    eprintln!(
        "{runtime}: {} of {HONEST} frames; cgroup {} MiB before, {} after, peak {:?}; {c}",
        got.len(),
        before / MIB,
        after / MIB,
        peak.map(|p| p / MIB)
    );
    assert_eq!(got, ids, "{runtime}: every honest frame, in order");
    assert!(
        c["hung_up_subscribers"].as_u64().unwrap() + c["accept_errors"].as_u64().unwrap()
            >= STORM as u64,
        "{runtime}: the storm was not seen: {c}"
    );
    // Flat: what the storm adds stays far below what even one of its
    // connections cost before (a 4 MiB queue each).
    let grew = peak.unwrap_or(after).saturating_sub(before);
    assert!(grew <= 32 * MIB, "{runtime}: +{} MiB", grew / MIB);
}

#[test]
fn a_connect_close_storm_leaves_memory_flat_and_the_honest_served_on_sprint() {
    storm("sprint");
}

#[cfg(feature = "tokio")]
#[test]
fn a_connect_close_storm_leaves_memory_flat_and_the_honest_served_on_tokio() {
    storm("tokio");
}
