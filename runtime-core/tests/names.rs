//! Task names and spawn locations.

mod common;
use sprint_core::{task, Level};
use std::panic::Location;

type Info = Option<(
    sprint_core::TaskId,
    Option<String>,
    &'static Location<'static>,
)>;

/// Spawns through `builder` and returns where the caller stands: with
/// `#[track_caller]` both name the caller's line.
#[track_caller]
fn spawn_here(
    builder: task::Builder,
) -> (sprint_core::JoinHandle<Info>, &'static Location<'static>) {
    (builder.spawn(task::current::info()), Location::caller())
}

#[test]
fn builder_names_tasks_and_every_task_records_where_it_was_spawned() {
    let rt = common::rt(Level::Basic, 1);
    let (named, unnamed, here_named, here_unnamed) = rt.block_on(async {
        let (named, here_named) = spawn_here(task::Builder::new().name("relay-in"));
        let (unnamed, here_unnamed) = spawn_here(task::Builder::new());
        (
            named.await.unwrap().unwrap(),
            unnamed.await.unwrap().unwrap(),
            here_named,
            here_unnamed,
        )
    });
    assert_eq!(named.1.as_deref(), Some("relay-in"));
    assert_eq!(named.2.file(), file!());
    assert_eq!(
        (named.2.line(), named.2.column()),
        (here_named.line(), here_named.column())
    );
    assert_eq!(unnamed.1, None);
    assert_eq!(unnamed.2.line(), here_unnamed.line());
    assert_ne!(named.2.line(), unnamed.2.line());
    assert_ne!(named.0, unnamed.0);
}

#[test]
fn local_and_pinned_builders_name_too() {
    let rt = common::rt(Level::Enterprise, 1);
    let names = rt.block_on(async {
        let a = task::Builder::new()
            .name("pinned")
            .spawn_on(0, async { task::current::info().await.unwrap().1 })
            .unwrap()
            .await
            .unwrap();
        let b = sprint_core::spawn(async {
            task::Builder::new()
                .name(String::from("local"))
                .spawn_local(async { task::current::info().await.unwrap().1 })
                .await
                .unwrap()
        })
        .await
        .unwrap();
        (a, b)
    });
    assert_eq!(
        names,
        (Some("pinned".to_string()), Some("local".to_string()))
    );
}
