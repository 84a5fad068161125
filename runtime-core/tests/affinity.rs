//! Workers are named, sized and pinned as planned: read back from the kernel.

mod common;
use sprint_core::Level;

fn comm(tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn pinned_levels_pin_every_worker_to_its_planned_cpu() {
    let allowed = sprint_os::allowed_cpus().unwrap();
    let rt = common::rt(Level::Aggressive, allowed.len());
    let plan = rt.start_report().plan.clone();
    let tids = rt.handle().worker_thread_ids();
    assert_eq!(tids.len(), plan.workers.len());
    for (w, tid) in plan.workers.iter().zip(tids) {
        assert!(w.pinned, "Aggressive pins");
        let mask = sprint_os::thread::affinity(tid).unwrap();
        assert_eq!(
            mask,
            vec![w.cpu],
            "worker {} affinity read from the kernel",
            w.index
        );
        assert_eq!(comm(tid), format!("sprint-worker-{}", w.index));
    }
}

#[test]
fn basic_leaves_workers_on_every_allowed_cpu() {
    let allowed = sprint_os::allowed_cpus().unwrap();
    let rt = common::rt(Level::Basic, 2);
    for (w, tid) in rt
        .start_report()
        .plan
        .workers
        .iter()
        .zip(rt.handle().worker_thread_ids())
    {
        assert!(!w.pinned);
        assert_eq!(sprint_os::thread::affinity(tid).unwrap(), allowed);
    }
}

#[test]
fn explicit_cpus_are_used_in_order() {
    let allowed = sprint_os::allowed_cpus().unwrap();
    let last = *allowed.last().unwrap();
    let rt = common::rt_with(Level::Enterprise, move |c| {
        c.cpus = Some(sprint_core::config::CpuList::new(vec![last]));
    });
    let tid = rt.handle().worker_thread_ids()[0];
    assert_eq!(rt.start_report().plan.workers.len(), 1);
    assert_eq!(sprint_os::thread::affinity(tid).unwrap(), vec![last]);
}

#[test]
fn workers_get_the_configured_stack_size() {
    for size in [256 * 1024, 3 * 1024 * 1024] {
        let rt = common::rt_with(Level::Basic, move |c| {
            c.workers = Some(1);
            c.stack_size = size;
        });
        let got = rt.block_on(async {
            sprint_core::spawn_on(0, async {
                // SAFETY: reads the calling thread's attributes into locals.
                unsafe {
                    let mut attr: libc::pthread_attr_t = std::mem::zeroed();
                    assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
                    let mut stack = 0usize;
                    assert_eq!(libc::pthread_attr_getstacksize(&attr, &mut stack), 0);
                    libc::pthread_attr_destroy(&mut attr);
                    stack
                }
            })
            .unwrap()
            .await
            .unwrap()
        });
        assert!(got >= size, "stack {got} < configured {size}");
        assert!(
            got < size + 1024 * 1024,
            "stack {got} far above configured {size}"
        );
    }
}

#[test]
fn the_starting_thread_and_the_blocking_pool_keep_off_pinned_workers() {
    let allowed = sprint_os::allowed_cpus().unwrap();
    let before = sprint_os::thread::affinity(0).unwrap();
    if allowed.len() < 2 {
        common::skip(
            "two-cpus",
            "one CPU: nothing is left beside a pinned worker",
        );
        return;
    }
    let last = *allowed.last().unwrap();
    let rest: Vec<usize> = allowed.iter().copied().filter(|c| *c != last).collect();
    // Named CPUs pin at every level, Basic too.
    let rt = common::rt_with(Level::Basic, move |c| {
        c.cpus = Some(sprint_core::config::CpuList::new(vec![last]));
    });
    assert!(rt.start_report().plan.workers[0].pinned);
    let tid = rt.handle().worker_thread_ids()[0];
    assert_eq!(sprint_os::thread::affinity(tid).unwrap(), vec![last]);
    assert_eq!(
        sprint_os::thread::affinity(0).unwrap(),
        rest,
        "the starting thread"
    );
    let blocking = rt.block_on(async {
        sprint_core::spawn_blocking(|| sprint_os::thread::affinity(0).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(blocking, rest, "a blocking thread");
    // One started from the worker (which is pinned) too.
    let from_worker = rt.block_on(async {
        sprint_core::spawn_on(0, async {
            let a = sprint_core::spawn_blocking(|| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                sprint_os::thread::affinity(0).unwrap()
            });
            let b = sprint_core::spawn_blocking(|| sprint_os::thread::affinity(0).unwrap());
            (a.await.unwrap(), b.await.unwrap())
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(from_worker, (rest.clone(), rest.clone()));
    let line = rt
        .start_report()
        .tuning()
        .into_iter()
        .find(|l| l.scope == "calling thread")
        .expect("the report names the move");
    assert!(line.to_string().contains("applied"), "{line}");
    drop(rt);
    assert_eq!(sprint_os::thread::affinity(0).unwrap(), before, "put back");
}
