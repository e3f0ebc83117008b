//! `sweep`: a hyper-parameter sweep. Every set trains through the `training`
//! sub-flow at once: the imports are `async` (see `wit/sweep.wit`), so the
//! flow starts all its calls and awaits them together, and cairn runs them
//! in parallel, each through the cache. Adding a set to a sweep that ran
//! before executes only the new set's training.

use futures::future::join_all;

wit_bindgen::generate!({
    path: "wit",
    world: "example:ml/sweep",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use example::ml::{evaluate, load, training};

struct Sweep;

/// Trains on `data` with `hp` (through the sub-flow) and scores the model.
async fn trial(data: &Blob, hp: Hyperparams) -> Result<Trial, String> {
    let weights = training::train_model(data, hp).await?;
    // The sub-flow parsed this CSV already: this call is a cache hit.
    let dataset = load::parse_csv(data).await?;
    let report = evaluate::score(&dataset, weights).await?;
    Ok(Trial { hp, report })
}

/// The best of `trials`: most accurate, then lowest loss, then first.
fn best(trials: Vec<Result<Trial, String>>) -> Result<Trial, String> {
    let mut best: Option<Trial> = None;
    for t in trials {
        let t = t?;
        let better = best.as_ref().is_none_or(|b| {
            t.report.accuracy > b.report.accuracy
                || (t.report.accuracy == b.report.accuracy && t.report.loss < b.report.loss)
        });
        if better {
            best = Some(t);
        }
    }
    best.ok_or_else(|| "no hyper-parameter sets to try".to_string())
}

impl Guest for Sweep {
    async fn sweep(data: &Blob, hps: Vec<Hyperparams>) -> Result<Trial, String> {
        best(join_all(hps.into_iter().map(|hp| trial(data, hp))).await)
    }

    async fn sweep_in_turn(data: &Blob, hps: Vec<Hyperparams>) -> Result<Trial, String> {
        let mut trials = Vec::new();
        for hp in hps {
            trials.push(trial(data, hp).await);
        }
        best(trials)
    }
}

export!(Sweep);
