//! `Runtime::enter` makes spawn, handles and timers work from a thread
//! that is not a worker; the Result-returning spawns never panic for the
//! error they can return (no runtime, no such worker, off the workers).

use sprint::{Builder, Handle, Level, Runtime, SpawnError};
use std::time::Duration;

fn runtime(workers: usize) -> Runtime {
    Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(workers)
        .build()
        .expect("a runtime")
}

#[test]
fn spawn_on_without_a_runtime_is_an_error_naming_the_call_and_the_fix() {
    let _rt = runtime(1);
    let e = sprint::spawn_on(0, async {}).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::NoRuntime {
                call: "spawn_on",
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("Runtime::enter"), "{text}");
    assert!(text.contains(file!()), "names the caller: {text}");
    let e = sprint::spawn_local_on(0, || async {}).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::NoRuntime {
                call: "spawn_local_on",
                ..
            }
        ),
        "{e:?}"
    );
    let e = sprint::try_spawn_local(async {}).unwrap_err();
    assert!(
        matches!(
            e,
            SpawnError::NotOnWorker {
                call: "try_spawn_local",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn after_enter_spawn_handles_and_timers_work_outside_block_on() {
    let rt = runtime(2);
    assert!(Handle::try_current().is_none());
    {
        let _guard = rt.enter();
        assert_eq!(Handle::current().workers(), 2);
        let on1 = sprint::spawn_on(1, async { 1 }).unwrap();
        let any = sprint::spawn(async { 2 });
        let blocking = sprint::spawn_blocking(|| 3);
        let timer = sprint::spawn(async {
            sprint::time::sleep(Duration::from_millis(1)).await;
            4
        });
        assert!(matches!(
            sprint::spawn_on(2, async {}).unwrap_err(),
            SpawnError::NoSuchWorker {
                worker: 2,
                workers: 2
            }
        ));
        // block_on still works with a guard held (the guard is not a
        // block_on, so they do not count as nested).
        let sum = rt.block_on(async {
            let slept = sprint::time::timeout(Duration::from_secs(10), async {
                sprint::time::sleep(Duration::from_millis(1)).await;
            });
            slept.await.expect("a timer polled here fires");
            on1.await.unwrap() + any.await.unwrap() + blocking.await.unwrap() + timer.await.unwrap()
        });
        assert_eq!(sum, 10);
        // Nested guards put back the outer runtime.
        let other = runtime(1);
        {
            let _inner = other.enter();
            assert_eq!(Handle::current().workers(), 1);
        }
        assert_eq!(Handle::current().workers(), 2);
    }
    assert!(
        Handle::try_current().is_none(),
        "the guard left nothing behind"
    );
}
