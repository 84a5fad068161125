#[sprint::main]
fn main() {}
