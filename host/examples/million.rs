//! A cache with many entries (default 1,000,000): how fast it fills, how big
//! its index is next to the values it holds, and the latency of hits spread
//! over all of it, from a freshly opened host.
//!
//! ```text
//! cargo run --release -p cairn --example million -- $PWD/examples/target/wasm32-wasip2/release [N [CACHE_DIR]]
//! ```
//!
//! A CACHE_DIR that already holds the entries is reused (filling is skipped).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_host::{CallOptions, Host, Value};
use support::{row, sample};

mod support;

fn args(i: usize) -> Vec<Value> {
    vec![Value::String(format!("m{i}")), Value::Bool(false)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let wasm = PathBuf::from(
        argv.next()
            .ok_or("usage: million WASM_DIR [N [CACHE_DIR]]")?,
    );
    let n: usize = argv.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = argv.next().map_or_else(
        || PathBuf::from(format!("target/bench/million-{n}")),
        PathBuf::from,
    );
    {
        let host = Host::open(&dir)?;
        let hello = host.load(wasm.join("hello.wasm"))?;
        if host.stats()?.entries < n as u64 {
            let t = Instant::now();
            let chunk = 10_000;
            for start in (0..n).step_by(chunk) {
                let calls: Vec<(String, Vec<Value>)> = (start..(start + chunk).min(n))
                    .map(|i| ("greet".to_string(), args(i)))
                    .collect();
                for out in host.call_all(&hello, &calls, &CallOptions::default(), 2) {
                    out?;
                }
            }
            host.flush()?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "| filling {n} entries (2 threads) | {secs:.1} s | | {:.0}/s | |",
                n as f64 / secs
            );
        }
        let s = host.stats()?;
        let values = (s.value_bytes + s.blob_bytes + s.output_bytes) as f64;
        drop(host);
        index_report(&dir.join("index.redb"), s.entries, values)?;
    }
    // A fresh host: hits on keys spread over the whole cache.
    let host = Host::open(&dir)?;
    let hello = host.load(wasm.join("hello.wasm"))?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let s = sample(20_000, || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let out = host
            .call(&hello, "greet", &args(seed as usize % n))
            .unwrap();
        assert_eq!(out.report.cache, cairn_host::CacheStatus::Hit);
    });
    row(
        &format!("hit on a random key of {n} (fresh host)"),
        &s,
        "p99 ≤ 100 µs",
    );
    let p99 = s[(s.len() - 1) * 99 / 100];
    println!("| (p99) | {:.1} µs | | | |", p99.as_secs_f64() * 1e6);
    Ok(())
}

/// The index file once closed (redb trims it then), what its pages hold
/// (redb's own statistics), and the file after compaction.
fn index_report(path: &Path, entries: u64, values: f64) -> Result<(), Box<dyn std::error::Error>> {
    let mib = |b: f64| b / (1 << 20) as f64;
    let per = |b: f64| b / entries as f64;
    let index = std::fs::metadata(path)?.len() as f64;
    println!(
        "| index for {entries} entries | {:.0} MiB | {:.0} B/entry | values {:.1} MiB | index / values = {:.1} |",
        mib(index),
        per(index),
        mib(values),
        index / values
    );
    let db = redb::Database::open(path)?;
    let st = db.begin_write()?.stats()?;
    drop(db);
    let allocated = (st.allocated_pages() * st.page_size() as u64) as f64;
    println!(
        "| of which: pages in use {:.0} B/entry (leaf data {:.0}), free pages {:.0} | | | | |",
        per(allocated),
        per(st.stored_bytes() as f64),
        per(index - allocated),
    );
    let t = Instant::now();
    let c = Host::open(path.parent().expect("in the cache dir"))?
        .compact()?
        .ok_or("another process was writing")?;
    let compacted = c.after as f64;
    println!(
        "| index after compaction ({:.1} s) | {:.0} MiB | {:.0} B/entry | | index / values = {:.1} |",
        t.elapsed().as_secs_f64(),
        mib(compacted),
        per(compacted),
        compacted / values
    );
    Ok(())
}
