//! Shared-tier figures for BENCHMARKS.md, against a running JetStream server
//! with workers (`bash bench/remote.sh` starts a server and two workers, then
//! runs this):
//!
//! ```text
//! cargo run --release -p cairn --example remote -- nats://127.0.0.1:PORT $PWD/examples/target/wasm32-wasip2/release
//! ```
//!
//! Prints Markdown rows: a hit answered by the shared tier (loopback) next to
//! a local hit, and tiny calls per second dispatched to the workers next to
//! the same calls executed locally, all in this one run.

use std::path::PathBuf;
use std::time::Instant;

use cairn_host::{CallOptions, Host, RemoteConfig, Value};
use support::{row, sample};

mod support;

fn args(name: String) -> Vec<Value> {
    vec![Value::String(name), Value::Bool(false)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let url = argv.next().ok_or("usage: remote URL WASM_DIR")?;
    let wasm = PathBuf::from(argv.next().ok_or("usage: remote URL WASM_DIR")?);
    let dir = tempfile::tempdir()?;
    let open = |name: &str| -> Result<Host, cairn_host::Error> {
        let host = Host::open(dir.path().join(name))?;
        host.connect(RemoteConfig::new(url.clone()))?;
        Ok(host)
    };
    let tag = format!(
        "{:x}",
        Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id())
    );
    let n = 500;

    // One host fills the shared tier; another, with an empty cache, hits it.
    let filler = open("filler")?;
    let hello = filler.load(wasm.join("hello.wasm"))?;
    for i in 0..n {
        filler.call(&hello, "greet", &args(format!("{tag}-{i}")))?;
    }
    filler.flush()?;
    let reader = open("reader")?;
    let hello = reader.load(wasm.join("hello.wasm"))?;
    let mut i = 0;
    let remote = sample(n, || {
        let out = reader
            .call(&hello, "greet", &args(format!("{tag}-{i}")))
            .unwrap();
        assert!(
            out.report.calls[0].remote,
            "expected a hit from the shared tier"
        );
        i += 1;
    });
    row(
        "hit from the shared tier (loopback), copied into the local cache",
        &remote,
        "—",
    );
    let mut i = 0;
    let local = sample(n, || {
        let out = reader
            .call(&hello, "greet", &args(format!("{tag}-{i}")))
            .unwrap();
        assert!(!out.report.calls[0].remote);
        i += 1;
    });
    row("the same hits, now local", &local, "—");

    // Tiny calls dispatched to the workers, then the same number run here.
    let client = open("client")?;
    let hello = client.load(wasm.join("hello.wasm"))?;
    let m = 400;
    let calls = |prefix: &str| -> Vec<(String, Vec<Value>)> {
        (0..m)
            .map(|i| ("greet".to_string(), args(format!("{tag}-{prefix}-{i}"))))
            .collect()
    };
    let mut opts = CallOptions::default();
    opts.dispatch = true;
    let rate = |what: &str, opts: &CallOptions, prefix: &str| -> Result<(), cairn_host::Error> {
        let start = Instant::now();
        let outs = client.call_all(&hello, &calls(prefix), opts, 16);
        let took = start.elapsed();
        for out in outs {
            let out = out?;
            assert_eq!(out.report.calls[0].worker.is_some(), opts.dispatch);
        }
        println!(
            "| {what} | {m} calls in {:.2} s | {:.0} calls/s |",
            took.as_secs_f64(),
            m as f64 / took.as_secs_f64()
        );
        Ok(())
    };
    rate(
        "tiny calls dispatched to 2 workers (16 in flight)",
        &opts,
        "d",
    )?;
    rate(
        "the same calls executed here and published (16 threads)",
        &CallOptions::default(),
        "l",
    )?;
    Ok(())
}
