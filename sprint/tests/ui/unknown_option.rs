#[sprint::main(levle = "basic")]
async fn main() {}
