//! Embedding cairn in a Rust application: open a cache, load a component,
//! call it twice, and see the second call answered from the cache.
//!
//! Build the examples first (`cargo build --release --target wasm32-wasip2
//! --manifest-path examples/Cargo.toml`), then:
//!
//! ```text
//! cargo run -p cairn --example embed -- examples/target/wasm32-wasip2/release/hello.wasm
//! ```

use cairn_host::{CacheStatus, Host, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let component = std::env::args().nth(1).ok_or("usage: embed HELLO.wasm")?;
    let cache = tempfile::tempdir()?;
    let host = Host::open(cache.path())?;
    let task = host.load(&component)?;
    for export in task.exports() {
        println!(
            "export {}: {}",
            export.path(),
            export.ty.as_ref().map_err(|e| e.clone())?
        );
    }
    let args = [Value::String("embedder".into()), Value::Bool(true)];
    let first = host.call(&task, "greet", &args)?;
    let second = host.call(&task, "greet", &args)?;
    for (n, out) in [(1, &first), (2, &second)] {
        let r = &out.report;
        println!(
            "call {n}: {} -> {} (executed {}, {:.3} ms)",
            r.cache.as_str(),
            out.value.as_ref().map(Value::to_wave).unwrap_or_default(),
            r.executed,
            r.elapsed.as_secs_f64() * 1e3
        );
    }
    assert_eq!(first.report.cache, CacheStatus::Miss);
    assert_eq!(second.report.cache, CacheStatus::Hit);
    assert_eq!(first.value, second.value);
    Ok(())
}
