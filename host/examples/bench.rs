//! In-process figures for BENCHMARKS.md: cairn through the library.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml
//! cargo run --release -p cairn --example bench -- $PWD/examples/target/wasm32-wasip2/release [CSV [TEXT]]
//! ```
//!
//! Prints one Markdown table: median and spread of each path, measured in
//! this one run (the machine is noisy; compare ratios, not absolutes).

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use cairn_host::{CacheMode, CallOptions, Host, Task, Value};
use support::{row, sample};

mod support;

/// The words example's kernel, compiled natively: the same source the task
/// runs as wasm.
#[path = "../../examples/words/src/count.rs"]
mod count;

fn pipeline(host: &Host, wasm: &Path) -> Result<Task, cairn_host::Error> {
    let load = |n: &str| {
        host.load(wasm.join(format!("ml_{n}.wasm")))
            .map(|t| t.named(n))
    };
    let pool = ["load", "train", "evaluate", "training"].map(load);
    let pool: Vec<Task> = pool.into_iter().collect::<Result<_, _>>()?;
    host.bind(&load("pipeline")?, &pool, &[])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let wasm = PathBuf::from(argv.next().ok_or("usage: bench WASM_DIR [CSV]")?);
    let csv = argv.next().map(PathBuf::from);
    let text = argv.next().map(PathBuf::from);
    let cache = tempfile::tempdir()?;
    let host = Host::open(cache.path())?;

    println!("| path | median | spread | rate | target |");
    println!("|---|---|---|---|---|");

    // A tiny task: executed every time (fresh store + instantiate + call + record).
    let hello = host.load(wasm.join("hello.wasm"))?;
    let args = [Value::String("bench".into()), Value::Bool(false)];
    let mut refresh = CallOptions::default();
    refresh.cache = CacheMode::Refresh;
    host.call_with(&hello, "greet", &args, &refresh)?; // compile once
    let s = sample(2000, || {
        host.call_with(&hello, "greet", &args, &refresh).unwrap();
    });
    row("executed tiny call, stored (`--refresh`)", &s, "≤ 50 µs");
    let mut off = CallOptions::default();
    off.cache = CacheMode::Off;
    let s = sample(2000, || {
        host.call_with(&hello, "greet", &args, &off).unwrap();
    });
    row("executed tiny call, not stored (`--no-cache`)", &s, "—");

    // What a new process does before its first call, without the process:
    // open the cache, load the component (a `stat`), create the engine, load
    // the compiled artefact kept in the cache, instantiate, execute.
    let fresh = tempfile::tempdir()?;
    Host::open(fresh.path())?.call_with(
        &host.load(wasm.join("hello.wasm"))?,
        "greet",
        &args,
        &off,
    )?;
    let s = sample(50, || {
        let h = Host::open(fresh.path()).unwrap();
        let hello = h.load(wasm.join("hello.wasm")).unwrap();
        h.call_with(&hello, "greet", &args, &off).unwrap();
    });
    row(
        "fresh host: open cache + load compiled artefact + engine + execute",
        &s,
        "load ≤ 5 ms",
    );

    // Both cores busy: many distinct calls through `call_all` on 2 threads.
    let many: Vec<(String, Vec<Value>)> = (0..20_000)
        .map(|i| {
            let args = vec![Value::String(format!("n{i}")), Value::Bool(false)];
            ("greet".to_string(), args)
        })
        .collect();
    let t = Instant::now();
    let outs = host.call_all(&hello, &many, &off, 2);
    let secs = t.elapsed().as_secs_f64();
    assert!(outs.iter().all(Result::is_ok));
    println!(
        "| executed tiny calls, 2 threads, not stored | {:.1} µs/call | (20,000 calls) | {:.0}/s | ≥ 20,000 calls/s |",
        secs * 1e6 / many.len() as f64,
        many.len() as f64 / secs
    );
    let t = Instant::now();
    let outs = host.call_all(&hello, &many[..2000], &refresh, 2);
    let secs = t.elapsed().as_secs_f64();
    assert!(outs.iter().all(Result::is_ok));
    println!(
        "| executed tiny calls, 2 threads, stored | {:.1} µs/call | (2,000 calls) | {:.0}/s | — |",
        secs * 1e6 / 2000.0,
        2000.0 / secs
    );
    let lookups: Vec<_> = many[..2000].iter().cycle().take(20_000).cloned().collect();
    let t = Instant::now();
    let outs = host.call_all(&hello, &lookups, &CallOptions::default(), 2);
    let secs = t.elapsed().as_secs_f64();
    assert!(outs.iter().all(|o| o
        .as_ref()
        .is_ok_and(|o| o.report.cache == cairn_host::CacheStatus::Hit)));
    println!(
        "| cache hits, 2 threads | {:.1} µs/call | (20,000 calls) | {:.0}/s | ≥ 200,000 lookups/s |",
        secs * 1e6 / lookups.len() as f64,
        lookups.len() as f64 / secs
    );

    // Hits of the tiny task.
    let s = sample(20_000, || {
        host.call(&hello, "greet", &args).unwrap();
    });
    row("cache hit, tiny task", &s, "≥ 200,000 lookups/s");

    // The whole seed pipeline, warm: one hit at the top.
    if let Some(csv) = csv {
        let flow = pipeline(&host, &wasm)?;
        let data = host.blob_from_file(&csv)?;
        let hp = Value::Record(vec![
            ("learning-rate".into(), Value::F64(0.5)),
            ("epochs".into(), Value::U32(2)),
        ]);
        let flow_args = [Value::Blob(data), hp];
        let t = Instant::now();
        host.call(&flow, "train-model", &flow_args)?;
        println!(
            "| (cold pipeline on {}: {:.2} s) | | | | |",
            csv.display(),
            t.elapsed().as_secs_f64()
        );
        let s = sample(5000, || {
            host.call(&flow, "train-model", &flow_args).unwrap();
        });
        row("warm whole-flow hit (seed pipeline)", &s, "≤ 50 µs");
        let s = sample(200, || {
            host.blob_from_file(&csv).unwrap();
        });
        row(
            "re-check of the unchanged CSV (`stat`)",
            &s,
            "≤ 1 ms (1 GiB)",
        );

        // Hashing a new input: cairn's path (fresh cache, so no stat entry)
        // against blake3's own multi-threaded mmap hashing, page cache warm.
        let len = std::fs::metadata(&csv)?.len() as f64;
        let own = sample(5, || {
            let mut h = blake3::Hasher::new();
            h.update_mmap_rayon(&csv).unwrap();
        });
        let fresh: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut caches = fresh.iter();
        let ours = sample(5, || {
            let host = Host::open(caches.next().unwrap().path()).unwrap();
            host.blob_from_file(&csv).unwrap();
        });
        let gbs = |d: Duration| len / d.as_secs_f64() / 1e9;
        println!(
            "| hashing a new {:.0} MiB input (incl. opening a fresh cache) | {:.2} GB/s (blake3 alone: {:.2} GB/s) | ratio {:.2} | | ≥ 0.90 |",
            len / (1 << 20) as f64,
            gbs(ours[2]),
            gbs(own[2]),
            gbs(ours[2]) / gbs(own[2])
        );
    }

    // The words kernel as wasm (through cairn, not cached) and natively.
    if let Some(text) = text {
        let words = host.load(wasm.join("words.wasm"))?;
        let blob = host.blob_from_file(&text)?;
        let args = [Value::Blob(blob), Value::U32(3)];
        let wasm_runs = sample(5, || {
            host.call_with(&words, "top", &args, &off).unwrap();
        });
        let native_runs = sample(5, || {
            std::hint::black_box(count::top(std::fs::File::open(&text).unwrap(), 3));
        });
        println!(
            "| word count of {}: wasm {:.0} ms, native {:.0} ms | ratio {:.2} | (median of 5) | | ≤ 1.5× |",
            text.display(),
            wasm_runs[2].as_secs_f64() * 1e3,
            native_runs[2].as_secs_f64() * 1e3,
            wasm_runs[2].as_secs_f64() / native_runs[2].as_secs_f64()
        );
    }
    Ok(())
}
