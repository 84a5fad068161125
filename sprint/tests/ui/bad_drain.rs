#[sprint::main(drain = "5 parsecs")]
async fn main() {}
