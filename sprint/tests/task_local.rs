//! `task_local!`: a value scoped to one future, seen wherever it is
//! polled, never by other tasks; `sync_scope`, `with`, `try_with`.

use sprint::task::AccessError;
use sprint::{Builder, Level};
use std::cell::Cell;
use std::time::Duration;

sprint::task_local! {
    /// A number per task.
    static ID: u32;
    /// A name per task.
    pub static NAME: String;
}

#[test]
fn each_task_sees_its_own_value_across_awaits_and_workers() {
    let rt = Builder::new()
        .level(Level::Basic)
        .read_env(false)
        .workers(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..16u32)
            .map(|i| {
                sprint::spawn(ID.scope(i, async move {
                    for _ in 0..5 {
                        assert_eq!(ID.get(), i);
                        sprint::time::sleep(Duration::from_millis(1)).await;
                        sprint::yield_now().await;
                    }
                    ID.get()
                }))
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i as u32);
        }
        // Not inside any scope here, nor in a task spawned from a scope.
        assert_eq!(ID.try_with(|v| *v), Err(AccessError));
        let inner = NAME
            .scope("outer".into(), async {
                sprint::spawn(async { NAME.try_with(|n| n.clone()) })
                    .await
                    .unwrap()
            })
            .await;
        assert_eq!(inner, Err(AccessError));
    });
}

#[test]
fn scopes_nest_and_restore_and_sync_scope_works_without_a_runtime() {
    let seen = ID.sync_scope(1, || {
        let outer = ID.get();
        let inner = ID.sync_scope(2, || ID.get());
        (outer, inner, ID.get())
    });
    assert_eq!(seen, (1, 2, 1));
    assert!(ID.try_with(|_| ()).is_err());
    let r = std::panic::catch_unwind(|| ID.with(|v| *v));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("task-local value not set"), "{msg}");
}

thread_local! {
    static DROPPED_WITH: Cell<Option<u32>> = const { Cell::new(None) };
}

struct ReadsOnDrop;
impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        DROPPED_WITH.with(|d| d.set(ID.try_with(|v| *v).ok()));
    }
}

#[test]
fn a_scoped_future_dropped_unfinished_is_dropped_inside_its_scope() {
    let fut = ID.scope(9, async {
        let _guard = ReadsOnDrop;
        std::future::pending::<()>().await;
    });
    let mut fut = Box::pin(fut);
    let waker = std::task::Waker::noop();
    assert!(fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker))
        .is_pending());
    drop(fut);
    assert_eq!(DROPPED_WITH.with(|d| d.get()), Some(9));
    assert!(
        ID.try_with(|_| ()).is_err(),
        "the value left with the future"
    );
}

use std::future::Future;
