//! `compare`: a second flow over the same `training` sub-flow.

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/compare",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::training;

struct Compare;

impl Guest for Compare {
    fn more_epochs(data: &Blob, hp: Hyperparams) -> Result<f64, String> {
        let base = training::train_model(data, hp)?;
        let longer = training::train_model(
            data,
            Hyperparams {
                epochs: hp.epochs * 2,
                ..hp
            },
        )?;
        Ok(base.iter().zip(&longer).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt())
    }
}

export!(Compare);
