#[sprint::main(level = "ludicrous")]
async fn main() {}
