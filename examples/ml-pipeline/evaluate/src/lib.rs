//! `evaluate`: accuracy and log-loss of a model on a dataset.

use cairn_guest::Blob;

include!("../../common/dataset.rs");

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/evaluator",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::types::Report;

struct Evaluate;

impl exports::example::ml::evaluate::Guest for Evaluate {
    fn score(dataset: &Blob, weights: Vec<f64>) -> Result<Report, String> {
        let data = Dataset::read(dataset)?;
        if weights.len() != data.cols {
            return Err(format!("{} weights for {} features (+ bias)", weights.len(), data.cols - 1));
        }
        let (mut right, mut loss) = (0u64, 0.0f64);
        for r in 0..data.rows {
            let (x, y) = data.row(r);
            let p = predict(&weights, x).clamp(1e-12, 1.0 - 1e-12);
            if (p >= 0.5) == (y >= 0.5) {
                right += 1;
            }
            loss -= if y >= 0.5 { p.ln() } else { (1.0 - p).ln() };
        }
        let n = data.rows.max(1) as f64;
        Ok(Report {
            rows: data.rows as u64,
            accuracy: right as f64 / n,
            loss: loss / n,
        })
    }
}

export!(Evaluate);
