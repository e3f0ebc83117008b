//! What compiling a large component costs under each option cairn could
//! use for a first run, for BENCHMARKS.md (issue 14, part 5).
//!
//! ```text
//! cargo run --release -p cairn-host --example compile_tiers -- app.wasm [ROUNDS]
//! ```
//!
//! Compiles the component with wasmtime configured as cairn's engine is
//! (NaN canonicalisation, deterministic relaxed SIMD, no function cache),
//! then with Cranelift's optimiser off, then on one thread; prints the
//! median wall time of each and the compiled size. Winch is not compiled
//! into cairn and is not measured here.

use std::time::Instant;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

fn config(opt: OptLevel, parallel: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.cranelift_nan_canonicalization(true);
    config.relaxed_simd_deterministic(true);
    config.cranelift_opt_level(opt);
    config.parallel_compilation(parallel);
    config
}

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: compile_tiers COMPONENT.wasm [ROUNDS]");
    let rounds: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("ROUNDS is a number"));
    let bytes = std::fs::read(&path)?;
    println!(
        "| {path} ({:.1} MB), {rounds} rounds | compile s (median) | compiled MB |",
        bytes.len() as f64 / 1e6
    );
    println!("|---|---|---|");
    for (name, opt, parallel) in [
        (
            "Cranelift, opt speed (cairn), 2 threads",
            OptLevel::Speed,
            true,
        ),
        ("Cranelift, opt none, 2 threads", OptLevel::None, true),
        ("Cranelift, opt speed, 1 thread", OptLevel::Speed, false),
    ] {
        let engine = Engine::new(&config(opt, parallel))?;
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let component = Component::new(&engine, &bytes)?;
            times.push(started.elapsed().as_secs_f64());
            size = component.serialize()?.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.1} | {:.1} |",
            times[rounds / 2],
            size as f64 / 1e6
        );
    }
    Ok(())
}
