//! Timing helpers shared by the benchmark examples.

use std::time::{Duration, Instant};

/// Runs `f` `n` times; returns the sorted durations.
pub fn sample(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut out: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn row(what: &str, s: &[Duration], target: &str) {
    let p = |q: f64| s[((s.len() - 1) as f64 * q) as usize];
    println!(
        "| {what} | {:.1} µs | {:.1}–{:.1} µs (p5–p95) | {:.0}/s | {target} |",
        us(p(0.5)),
        us(p(0.05)),
        us(p(0.95)),
        1.0 / p(0.5).as_secs_f64()
    );
}
