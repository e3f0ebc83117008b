//! The scoring loop of `evaluate`, shared with cairn's cold-run benchmark
//! (which compiles it natively): no wasm or SDK types here.

use crate::dataset::{predict, Dataset};

/// Rows right (prediction and label on the same side of 0.5) and the
/// summed log-loss of `weights` on `data`.
pub fn score(data: &Dataset, weights: &[f64]) -> (u64, f64) {
    let (mut right, mut loss) = (0u64, 0.0f64);
    for r in 0..data.rows {
        let (x, y) = data.row(r);
        let p = predict(weights, x).clamp(1e-12, 1.0 - 1e-12);
        if (p >= 0.5) == (y >= 0.5) {
            right += 1;
        }
        loss -= if y >= 0.5 { p.ln() } else { (1.0 - p).ln() };
    }
    (right, loss)
}
