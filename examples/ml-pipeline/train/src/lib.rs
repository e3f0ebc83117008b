//! `train`: logistic regression by full-batch gradient descent.

use cairn_guest::{Blob, BlobExt};

#[path = "../../common/dataset.rs"]
mod dataset;
mod fit;

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/trainer",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::types::Hyperparams;

struct Train;

impl exports::example::ml::train::Guest for Train {
    fn fit(dataset: &Blob, hp: Hyperparams) -> Result<Vec<f64>, String> {
        let data = dataset::Dataset::from_bytes(&dataset.bytes())?;
        if data.rows == 0 {
            return Err("the dataset has no rows".into());
        }
        Ok(fit::fit(&data, hp.learning_rate, hp.epochs))
    }
}

export!(Train);
