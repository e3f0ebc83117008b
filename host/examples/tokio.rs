//! cairn inside a tokio application: one `Host`, cloned into every task,
//! serving many calls at once with `call_async`. cairn starts no runtime of
//! its own; each call runs on a thread of its own and its future resolves on
//! whatever executor awaits it.
//!
//! Build the examples first (`cargo build --release --target wasm32-wasip2
//! --manifest-path examples/Cargo.toml`), then:
//!
//! ```text
//! cargo run -p cairn-host --example tokio -- examples/target/wasm32-wasip2/release/hello.wasm Ada Grace Ada Linus
//! ```
//!
//! Each name is a request, served concurrently; asking a name twice
//! executes the task once.

use cairn_host::{CallOptions, Host, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let component = args.next().ok_or("usage: tokio HELLO.wasm NAME...")?;
    let names: Vec<String> = args.collect();
    let cache = tempfile::tempdir()?;
    let host = Host::open(cache.path())?;
    let task = host.load(&component)?;

    // Every request at once, twice over: the second round finds the first's
    // results (or waits for the identical call still running).
    let mut requests = tokio::task::JoinSet::new();
    for (i, name) in names.iter().chain(&names).enumerate() {
        let (host, task, name) = (host.clone(), task.clone(), name.clone());
        requests.spawn(async move {
            let args = [Value::String(name.clone()), Value::Bool(false)];
            let out = host
                .call_async(&task, "greet", &args, &CallOptions::default())
                .await;
            (i, name, out)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = requests.join_next().await {
        let (i, name, out) = done?;
        let out = out?;
        println!(
            "request {i:>2} {name}: {} ({})",
            out.value.as_ref().map(Value::to_wave).unwrap_or_default(),
            out.report.cache.as_str()
        );
        answers.push((name, out.value, out.report.executed));
    }
    let executed: u32 = answers.iter().map(|(_, _, e)| e).sum();
    let mut distinct: Vec<&String> = names.iter().collect();
    distinct.sort();
    distinct.dedup();
    println!(
        "{} requests, {} distinct, {executed} executed",
        answers.len(),
        distinct.len()
    );
    // Identical requests got identical answers, and ran once.
    for (name, value, _) in &answers {
        let same = answers.iter().filter(|(n, _, _)| n == name);
        assert!(same.clone().all(|(_, v, _)| v == value));
    }
    assert_eq!(executed as usize, distinct.len());
    Ok(())
}
