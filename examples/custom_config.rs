//! A program configured by a TOML file, read at run time relative to the
//! working directory, with `SPRINT_*` variables over it. Prints where each
//! setting came from.
//!
//! `cd somewhere-with-sprint.toml && cargo run -p sprint-examples --bin custom_config`

#[sprint::main(level = "aggressive", config = "sprint.toml")]
async fn main() {
    let handle = sprint::Handle::current();
    let stats = handle.worker_stats();
    println!("workers: {}", stats.len());
    let config = sprint::Config::load(
        Some(sprint::Level::Aggressive),
        Some("sprint.toml".as_ref()),
    )
    .expect("the same configuration the runtime started with");
    println!("level: {} ({})", config.level, config.sources()["level"]);
    println!(
        "coop_budget: {} ({})",
        config.coop_budget,
        config.sources()["coop_budget"]
    );
    println!(
        "workers: {:?} ({})",
        config.workers,
        config.sources()["workers"]
    );
}
