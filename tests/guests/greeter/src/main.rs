//! A command: greets on stdout, notes on stderr, and fails when its
//! environment says so (the test grants `GREETER_FAIL`).

fn main() -> std::process::ExitCode {
    let who = std::env::var("GREETER_NAME").unwrap_or_else(|_| "world".into());
    println!("hello, {who}");
    eprintln!("greeted {who}");
    if std::env::var("GREETER_FAIL").is_ok() {
        eprintln!("failing as asked");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
