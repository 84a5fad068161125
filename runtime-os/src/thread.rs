//! The one file of system calls about threads (and the few process limits
//! the tuner reads): scheduling class, nice, timer slack, affinity,
//! RLIMIT_MEMLOCK, the THP switch, and the kernel's RT throttling. Every
//! other module of Sprint that reads or changes these calls here.
//!
//! A thread is named by its kernel id ([`Tid`]); `0` means the calling
//! thread, as the system calls themselves take it. These are Linux's; on
//! other platforms callers report the setting unsupported.

#![cfg(target_os = "linux")]

use std::io;

/// A kernel thread id (`gettid`); 0 is the calling thread.
pub type Tid = libc::pid_t;

fn errno() -> io::Error {
    io::Error::last_os_error()
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The calling thread's kernel id.
pub fn current_tid() -> Tid {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// The real id behind `tid` (0: the calling thread's).
fn real(tid: Tid) -> Tid {
    if tid == 0 {
        current_tid()
    } else {
        tid
    }
}

/// The scheduling class (with its SCHED_RESET_ON_FORK flag, if set: what
/// a restore must put back) and real-time priority of `tid`.
pub fn sched(tid: Tid) -> io::Result<(libc::c_int, libc::c_int)> {
    // SAFETY: a query about a thread id, no pointers.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    if policy < 0 {
        return Err(errno());
    }
    let mut p = libc::sched_param { sched_priority: 0 };
    // SAFETY: a thread id and a valid out-pointer.
    check(unsafe { libc::sched_getparam(tid, &mut p) })?;
    Ok((policy, p.sched_priority))
}

/// Sets `tid`'s scheduling class and priority (a real-time class needs
/// CAP_SYS_NICE or RLIMIT_RTPRIO).
pub fn set_sched(tid: Tid, policy: libc::c_int, prio: libc::c_int) -> io::Result<()> {
    let p = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: a thread id and a valid parameter struct.
    check(unsafe { libc::sched_setscheduler(tid, policy, &p) })
}

/// Whether `policy` is a real-time class.
pub fn is_real_time(policy: libc::c_int) -> bool {
    matches!(
        policy & !libc::SCHED_RESET_ON_FORK,
        libc::SCHED_FIFO | libc::SCHED_RR
    )
}

/// A scheduling class by its name in the kernel's headers.
pub fn policy_name(p: libc::c_int) -> String {
    match p & !libc::SCHED_RESET_ON_FORK {
        libc::SCHED_OTHER => "SCHED_OTHER".into(),
        libc::SCHED_FIFO => "SCHED_FIFO".into(),
        libc::SCHED_RR => "SCHED_RR".into(),
        libc::SCHED_BATCH => "SCHED_BATCH".into(),
        libc::SCHED_IDLE => "SCHED_IDLE".into(),
        other => format!("policy {other}"),
    }
}

/// `tid`'s nice value (per thread on Linux).
pub fn nice(tid: Tid) -> i32 {
    // SAFETY: getpriority on a thread id; -1 is a valid value, so errno is
    // not consulted (the call cannot fail for a thread of this process).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, real(tid) as libc::id_t) }
}

/// Sets `tid`'s nice value (lowering it needs CAP_SYS_NICE).
pub fn set_nice(tid: Tid, n: i32) -> io::Result<()> {
    // SAFETY: setpriority on a thread id (per-thread on Linux).
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, real(tid) as libc::id_t, n) })
}

/// `tid`'s timer slack, ns: the calling thread's through prctl, another's
/// through /proc.
pub fn timer_slack(tid: Tid) -> io::Result<u64> {
    if tid == 0 || tid == current_tid() {
        // SAFETY: PR_GET_TIMERSLACK takes no pointers.
        return Ok(unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) } as u64);
    }
    std::fs::read_to_string(format!("/proc/{tid}/timerslack_ns"))?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Sets `tid`'s timer slack, ns (another thread's through /proc, which
/// needs CAP_SYS_NICE).
pub fn set_timer_slack(tid: Tid, ns: u64) -> io::Result<()> {
    if tid == 0 || tid == current_tid() {
        // SAFETY: PR_SET_TIMERSLACK takes a value.
        return check(unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0)
        });
    }
    std::fs::write(format!("/proc/{tid}/timerslack_ns"), ns.to_string())
}

/// The CPUs in `tid`'s affinity mask (0: the calling thread's; the
/// process id: the main thread's).
pub fn affinity(tid: Tid) -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, which outlives the call.
    check(unsafe {
        libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
    })?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, and `set` is initialised.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Pins `tid` to `cpus`.
pub fn set_affinity(tid: Tid, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {c} is beyond CPU_SETSIZE"),
            ));
        }
        // SAFETY: `c` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: the pointer and size describe `set`.
    check(unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) })
}

/// RLIMIT_MEMLOCK as (soft, hard) bytes.
pub fn memlock() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) };
    (r.rlim_cur, r.rlim_max)
}

/// Sets RLIMIT_MEMLOCK (raising the hard limit needs CAP_SYS_RESOURCE).
pub fn set_memlock(soft: u64, hard: u64) -> io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid struct.
    check(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &r) })
}

/// A limit in words: `unlimited` or KiB.
pub fn limit_name(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        format!("{} KiB", v / 1024)
    }
}

/// Whether transparent huge pages are off for this process (PR_GET_THP_DISABLE).
pub fn thp_disabled() -> bool {
    // SAFETY: PR_GET_THP_DISABLE takes no pointers.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1 }
}

/// Turns transparent huge pages off or on for this process.
pub fn set_thp_disabled(d: bool) -> io::Result<()> {
    // SAFETY: PR_SET_THP_DISABLE takes a flag.
    check(unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, d as libc::c_ulong, 0, 0, 0) })
}

/// The kernel's RT throttling: (kernel.sched_rt_runtime_us,
/// kernel.sched_rt_period_us); a runtime of -1 means throttling is off.
/// `None` where either cannot be read.
pub fn rt_throttling() -> Option<(i64, i64)> {
    let read = |p: &str| -> Option<i64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    Some((
        read("/proc/sys/kernel/sched_rt_runtime_us")?,
        read("/proc/sys/kernel/sched_rt_period_us")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_threads_settings_read_the_same_by_zero_and_by_id() {
        let me = current_tid();
        assert!(me > 0);
        assert_eq!(sched(0).unwrap(), sched(me).unwrap());
        assert_eq!(nice(0), nice(me));
        assert_eq!(timer_slack(0).unwrap(), timer_slack(me).unwrap());
        assert_eq!(affinity(0).unwrap(), affinity(me).unwrap());
        assert!(!affinity(0).unwrap().is_empty());
        assert!(sched(-5).is_err(), "a thread id that cannot exist");
    }

    #[test]
    fn another_threads_slack_is_set_through_proc() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(current_tid()).unwrap();
            let _ = done_rx.recv();
            timer_slack(0).unwrap()
        });
        let tid = rx.recv().unwrap();
        let before = timer_slack(tid).unwrap();
        let want = before + 1000;
        set_timer_slack(tid, want).unwrap();
        assert_eq!(timer_slack(tid).unwrap(), want);
        done_tx.send(()).unwrap();
        assert_eq!(
            t.join().unwrap(),
            want,
            "the thread sees its own slack changed"
        );
    }

    #[test]
    fn policy_names_and_real_time_classes() {
        assert_eq!(
            policy_name(libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK),
            "SCHED_FIFO"
        );
        assert!(is_real_time(libc::SCHED_RR));
        assert!(!is_real_time(libc::SCHED_OTHER));
        assert_eq!(limit_name(libc::RLIM_INFINITY), "unlimited");
        assert_eq!(limit_name(64 * 1024), "64 KiB");
    }
}
