//! Task names and spawn locations.

mod common;
use sprint_core::{task, Level};

#[test]
fn builder_names_tasks_and_every_task_records_where_it_was_spawned() {
    let rt = common::rt(Level::Basic, 1);
    let (named, unnamed, line) = rt.block_on(async {
        let line = line!() + 1;
        let named = task::Builder::new()
            .name("relay-in")
            .spawn(async { task::current::info().await });
        let unnamed = sprint_core::spawn(async { task::current::info().await });
        (
            named.await.unwrap().unwrap(),
            unnamed.await.unwrap().unwrap(),
            line,
        )
    });
    assert_eq!(named.1.as_deref(), Some("relay-in"));
    assert_eq!(named.2.file(), file!());
    assert_eq!(named.2.line(), line);
    assert_eq!(unnamed.1, None);
    assert_eq!(unnamed.2.line(), line + 1);
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
