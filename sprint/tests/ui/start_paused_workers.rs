#[sprint::test(start_paused = true, workers = 2)]
async fn two_workers_cannot_pause() {}

fn main() {}
