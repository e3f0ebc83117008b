//! Flows that fan out (`examples/ml-pipeline/sweep`): a flow importing its
//! tasks' functions as `async` awaits several calls at once, and cairn runs
//! them in parallel, each through the cache.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::pipeline::{each_call, text};
use crate::support::{cairn, example, failure, json};

/// A manifest of the ML tasks with the sweep flow.
fn manifest(dir: &Path) -> PathBuf {
    let wasm = |name: &str| example(&format!("ml_{name}")).display().to_string();
    let text = format!(
        "[tasks]\nload = {:?}\ntrain = {:?}\nevaluate = {:?}\ntraining = {:?}\nsweep = {:?}\n",
        wasm("load"),
        wasm("train"),
        wasm("evaluate"),
        wasm("training"),
        wasm("sweep"),
    );
    let path = dir.join("cairn.toml");
    fs::write(&path, text).unwrap();
    path
}

/// The sweep's manifest and data in a temporary directory.
pub struct Sweep {
    /// Holds the manifest and the data.
    _dir: tempfile::TempDir,
    manifest: PathBuf,
    data: PathBuf,
}

impl Sweep {
    pub fn new() -> Sweep {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.csv");
        crate::support::ml_csv(&data, 1500, 11);
        Sweep {
            manifest: manifest(dir.path()),
            data,
            _dir: dir,
        }
    }

    fn command(
        &self,
        cache: &Path,
        export: &str,
        epochs: &[u32],
        options: &[&str],
    ) -> assert_cmd::Command {
        let hps: Vec<String> = epochs
            .iter()
            .map(|e| format!("{{learning-rate: 0.5, epochs: {e}}}"))
            .collect();
        let mut cmd = cairn(cache);
        cmd.arg("run")
            .arg("--manifest")
            .arg(&self.manifest)
            .args(options)
            .args(["sweep", export, "--data"])
            .arg(format!("@{}", self.data.display()))
            .arg("--hps")
            .arg(format!("[{}]", hps.join(", ")));
        cmd
    }

    /// Runs `export` of the sweep on trainings of `epochs`.
    pub fn run(&self, cache: &Path, export: &str, epochs: &[u32], options: &[&str]) -> Json {
        json(&mut self.command(cache, export, epochs, options))
    }
}

/// The records of the calls to `component`.
fn calls_to<'a>(out: &'a Json, component: &str) -> Vec<&'a Json> {
    out["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["component"] == component)
        .collect()
}

fn statuses(calls: &[&Json]) -> Vec<String> {
    calls.iter().map(|c| text(&c["cache"])).collect()
}

/// Every call's (component, key), sorted: the calls a flow makes in
/// reaction to answers that came at once may be listed in another order.
fn keys(out: &Json) -> Vec<(String, String)> {
    let mut keys = each_call(out, |c| (text(&c["component"]), text(&c["key"])));
    keys.sort();
    keys
}

#[test]
fn a_sweep_trains_at_once_and_answers_like_the_sweep_in_turn() {
    let s = Sweep::new();
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sets = [3, 5, 7];
    let at_once = s.run(a.path(), "sweep", &sets, &["--jobs", "2"]);
    assert_eq!(at_once["cache"], "miss");

    // The trainings overlap: each started before any of them ended.
    let trainings = calls_to(&at_once, "training");
    assert_eq!(statuses(&trainings), ["miss", "miss", "miss"]);
    let ms = |c: &Json, f: &str| c[f].as_f64().unwrap();
    let last_start = trainings
        .iter()
        .map(|c| ms(c, "start_ms"))
        .fold(0.0, f64::max);
    let first_end = trainings
        .iter()
        .map(|c| ms(c, "start_ms") + ms(c, "ms"))
        .fold(f64::INFINITY, f64::min);
    assert!(
        last_start < first_end,
        "the trainings ran one after another: {trainings:?}"
    );
    // The three trainings parse the same CSV: one parse executes, the
    // others wait for it and hit.
    let parses = calls_to(&at_once, "load");
    assert_eq!(
        parses.iter().filter(|c| c["cache"] == "miss").count(),
        1,
        "{parses:?}"
    );

    // The same flow run one call at a time, and in turn: the same answer,
    // the same calls with the same keys, the trainings (made before any
    // answer came) in the same order.
    let one_job = s.run(b.path(), "sweep", &sets, &["--jobs", "1"]);
    assert_eq!(one_job["result"], at_once["result"]);
    assert_eq!(keys(&one_job), keys(&at_once));
    let training_keys = |out: &Json| -> Vec<String> {
        calls_to(out, "training")
            .iter()
            .map(|c| text(&c["key"]))
            .collect()
    };
    assert_eq!(training_keys(&one_job), training_keys(&at_once));
    let in_turn = s.run(c.path(), "sweep-in-turn", &sets, &[]);
    assert_eq!(in_turn["result"], at_once["result"]);
    assert_eq!(training_keys(&in_turn), training_keys(&at_once));

    // Again: one hit, nothing executed.
    let again = s.run(a.path(), "sweep", &sets, &[]);
    assert_eq!(
        (again["cache"].as_str(), again["executed"].as_u64()),
        (Some("hit"), Some(0))
    );
    assert_eq!(again["result"], at_once["result"]);

    // One more set: only its training executes.
    let more = s.run(a.path(), "sweep", &[3, 5, 7, 9], &[]);
    assert_eq!(
        statuses(&calls_to(&more, "training")),
        ["hit", "hit", "hit", "miss"]
    );
    assert_eq!(statuses(&calls_to(&more, "train")), ["miss"]);
}

#[test]
fn identical_calls_in_a_sweep_execute_once() {
    let s = Sweep::new();
    let cache = tempfile::tempdir().unwrap();
    let out = s.run(cache.path(), "sweep", &[4, 4, 4], &[]);
    let trainings = calls_to(&out, "training");
    assert_eq!(trainings.len(), 3);
    assert_eq!(
        trainings.iter().filter(|c| c["cache"] == "miss").count(),
        1,
        "{trainings:?}"
    );
    assert_eq!(statuses(&calls_to(&out, "train")), ["miss"]);
}

#[test]
fn a_failing_call_fails_the_sweep_and_its_finished_siblings_stay_cached() {
    let s = Sweep::new();
    let cache = tempfile::tempdir().unwrap();
    // Fuel is counted, not timed: 100 million epochs run out, 2 do not.
    let fuel = ["--fuel", "2000000000", "--jobs", "2"];
    let (code, err) = failure(&mut s.command(cache.path(), "sweep", &[2, 100_000_000], &fuel));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("train ran out of fuel"), "{err}");
    assert!(err.contains("`example:ml/train@0.1.0#fit`"), "{err}");
    assert!(err.contains("nothing was cached"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // The set that trained is not trained again.
    let out = s.run(cache.path(), "sweep", &[2], &fuel);
    assert_eq!(statuses(&calls_to(&out, "training")), ["hit"]);
}

/// `words-map` over `text` in `chunks` pieces, bound to `words`.
fn words_map(cache: &Path, text: &Path, export: &str, chunks: u32, n: Option<u32>) -> Json {
    let mut cmd = cairn(cache);
    cmd.arg("run")
        .arg(example("words_map"))
        .arg("--with")
        .arg(example("words"))
        .args([export, "--text"])
        .arg(format!("@{}", text.display()))
        .args(["--chunks", &chunks.to_string()]);
    if let Some(n) = n {
        cmd.args(["--n", &n.to_string()]);
    }
    json(&mut cmd)
}

#[test]
fn a_map_over_chunks_answers_like_one_count_and_reuses_its_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    let line = "the cat and the dog and the bird saw a cat\n";
    fs::write(&text, line.repeat(500)).unwrap();
    let cache = tempfile::tempdir().unwrap();

    let whole = json(
        cairn(cache.path())
            .arg("run")
            .arg(example("words"))
            .args(["top", "--text"])
            .arg(format!("@{}", text.display()))
            .args(["--n", "4"]),
    );
    let mapped = words_map(cache.path(), &text, "top", 16, Some(4));
    assert_eq!(mapped["result"], whole["result"]);
    let tallies = mapped["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["export"] == "example:words/count@0.1.0#tally")
        .count();
    assert_eq!(tallies, 16);

    // Another `n` over the same pieces: every piece's count is a hit, only
    // the merge runs.
    let fewer = words_map(cache.path(), &text, "top", 16, Some(2));
    assert_eq!(
        (fewer["executed"].as_u64(), fewer["hits"].as_u64()),
        (Some(1), Some(16))
    );

    let total = words_map(cache.path(), &text, "total", 50, None);
    assert_eq!(total["result"], "5500");
}

#[test]
fn a_sweep_wider_than_the_old_instance_pool_runs() {
    // Every training sub-flow keeps its instance while it waits for its
    // calls: 70 of them once overflowed a pool of 64 instances.
    let s = Sweep::new();
    let cache = tempfile::tempdir().unwrap();
    let epochs: Vec<u32> = (1..=70).collect();
    let out = s.run(cache.path(), "sweep", &epochs, &[]);
    assert_eq!(calls_to(&out, "training").len(), 70);
}
