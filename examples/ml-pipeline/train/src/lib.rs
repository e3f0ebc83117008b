//! `train`: logistic regression by full-batch gradient descent.

use cairn_guest::Blob;

include!("../../common/dataset.rs");

wit_bindgen::generate!({
    path: "../wit",
    world: "example:ml/trainer",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::types::Hyperparams;

struct Train;

impl exports::example::ml::train::Guest for Train {
    fn fit(dataset: &Blob, hp: Hyperparams) -> Result<Vec<f64>, String> {
        let data = Dataset::read(dataset)?;
        if data.rows == 0 {
            return Err("the dataset has no rows".into());
        }
        let features = data.cols - 1;
        let mut weights = vec![0.0f64; features + 1];
        let mut grad = vec![0.0f64; features + 1];
        for _ in 0..hp.epochs {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for r in 0..data.rows {
                let (x, y) = data.row(r);
                let err = predict(&weights, x) - f64::from(y);
                for (g, xi) in grad.iter_mut().zip(x) {
                    *g += err * f64::from(*xi);
                }
                grad[features] += err;
            }
            let step = hp.learning_rate / data.rows as f64;
            for (w, g) in weights.iter_mut().zip(&grad) {
                *w -= step * g;
            }
        }
        Ok(weights)
    }
}

export!(Train);
