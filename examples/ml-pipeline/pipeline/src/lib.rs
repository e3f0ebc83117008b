//! `pipeline`: train through the `training` sub-flow, then evaluate.

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/pipeline",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::{evaluate, load, training};

struct Pipeline;

impl Guest for Pipeline {
    fn train_model(data: &Blob, hp: Hyperparams) -> Result<Report, String> {
        let weights = training::train_model(data, hp)?;
        // The sub-flow parsed this CSV already: this call is a cache hit.
        let dataset = load::parse_csv(data)?;
        evaluate::score(&dataset, &weights)
    }
}

export!(Pipeline);
