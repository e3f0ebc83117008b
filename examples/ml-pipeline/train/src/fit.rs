//! The training loop of `train`, shared with cairn's cold-run benchmark
//! (which compiles it natively): no wasm or SDK types here.

use crate::dataset::{predict, Dataset};

/// Logistic regression by full-batch gradient descent: the weights, bias
/// last, after `epochs` steps of `learning_rate`.
pub fn fit(data: &Dataset, learning_rate: f64, epochs: u32) -> Vec<f64> {
    let features = data.cols - 1;
    let mut weights = vec![0.0f64; features + 1];
    let mut grad = vec![0.0f64; features + 1];
    for _ in 0..epochs {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for r in 0..data.rows {
            let (x, y) = data.row(r);
            let err = predict(&weights, x) - f64::from(y);
            for (g, xi) in grad.iter_mut().zip(x) {
                *g += err * f64::from(*xi);
            }
            grad[features] += err;
        }
        let step = learning_rate / data.rows as f64;
        for (w, g) in weights.iter_mut().zip(&grad) {
            *w -= step * g;
        }
    }
    weights
}
