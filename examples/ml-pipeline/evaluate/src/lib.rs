//! `evaluate`: accuracy and log-loss of a model on a dataset.

use cairn_guest::{Blob, BlobExt};

#[path = "../../common/dataset.rs"]
mod dataset;
mod score;

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/evaluator",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::types::Report;

struct Evaluate;

impl exports::example::ml::evaluate::Guest for Evaluate {
    fn score(dataset: &Blob, weights: Vec<f64>) -> Result<Report, String> {
        let data = dataset::Dataset::from_bytes(&dataset.bytes())?;
        if weights.len() != data.cols {
            return Err(format!("{} weights for {} features (+ bias)", weights.len(), data.cols - 1));
        }
        let (right, loss) = score::score(&data, &weights);
        let n = data.rows.max(1) as f64;
        Ok(Report {
            rows: data.rows as u64,
            accuracy: right as f64 / n,
            loss: loss / n,
        })
    }
}

export!(Evaluate);
