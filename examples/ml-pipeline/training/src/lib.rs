//! `training`: a sub-flow. Both of its calls go through cairn's cache.

use cairn_guest::Blob;

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/training-flow",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::types::Hyperparams;
use example::ml::{load, train};

struct Training;

impl exports::example::ml::training::Guest for Training {
    fn train_model(csv: &Blob, hp: Hyperparams) -> Result<Vec<f64>, String> {
        let dataset = load::parse_csv(csv)?;
        train::fit(&dataset, hp)
    }
}

export!(Training);
