//! `#[sprint::main]` and `#[sprint::test]`: the attributes in use, and
//! their misuse pinned by trybuild.

#[sprint::test]
async fn sprint_test_runs_the_body_on_a_fresh_runtime() {
    let h = sprint::spawn(async { 2 + 2 });
    assert_eq!(h.await.unwrap(), 4);
    assert_eq!(
        sprint::Handle::current().workers(),
        sprint_os::allowed_cpus().unwrap().len()
    );
}

#[sprint::test(level = "enterprise", workers = 1)]
async fn sprint_test_takes_options() {
    let name = sprint::spawn(async { std::thread::current().name().unwrap().to_string() })
        .await
        .unwrap();
    assert_eq!(name, "sprint-worker-0");
    assert_eq!(sprint::Handle::current().workers(), 1);
}

#[sprint::test(crate = "sprint")]
async fn sprint_test_returns_results() -> Result<(), String> {
    sprint::time::sleep(std::time::Duration::from_millis(1)).await;
    Ok(())
}

#[test]
fn misuse_is_a_friendly_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
