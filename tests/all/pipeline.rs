//! The seed example (`examples/ml-pipeline`) through the CLI: a flow over a
//! sub-flow, whole-flow hits, partial re-runs, sharing across flows, and
//! persistence policy.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::support::{cairn, example, failure, json, with_custom_section};

fn csv(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("data.csv");
    crate::support::ml_csv(&path, rows, 7);
    path
}

/// A manifest over the built ML components; `train` may be replaced and
/// `load` may be kept out of the store.
pub fn manifest(dir: &Path, train: Option<&Path>, load_persist: bool) -> PathBuf {
    let wasm = |name: &str| example(&format!("ml_{name}")).display().to_string();
    let train = train
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| wasm("train"));
    let text = format!(
        "[tasks]\nload = {{ path = {:?}, persist = {load_persist} }}\ntrain = {train:?}\nevaluate = {:?}\n\
         training = {:?}\npipeline = {:?}\ncompare = {:?}\n",
        wasm("load"),
        wasm("evaluate"),
        wasm("training"),
        wasm("pipeline"),
        wasm("compare"),
    );
    let path = dir.join("cairn.toml");
    fs::write(&path, text).unwrap();
    path
}

fn run_task(cache: &Path, manifest: &Path, task: &str, data: &Path, epochs: u32) -> Json {
    run_task_with(cache, manifest, task, data, epochs, &[])
}

/// [`run_task`] with more of `cairn run`'s options.
pub fn run_task_with(
    cache: &Path,
    manifest: &Path,
    task: &str,
    data: &Path,
    epochs: u32,
    options: &[&str],
) -> Json {
    run_task_at(cache, manifest, task, data, epochs, options, None)
}

/// [`run_task_with`], with the cache's clock at `now_ms` (`CAIRN_NOW_MS`)
/// when given.
fn run_task_at(
    cache: &Path,
    manifest: &Path,
    task: &str,
    data: &Path,
    epochs: u32,
    options: &[&str],
    now_ms: Option<&str>,
) -> Json {
    let mut cmd = cairn(cache);
    if let Some(now) = now_ms {
        cmd.env("CAIRN_NOW_MS", now);
    }
    json(
        cmd.arg("run")
            .arg("--manifest")
            .arg(manifest)
            .args(options)
            .args([
                task,
                "--data",
                &format!("@{}", data.display()),
                "--hp",
                &format!("{{learning-rate: 0.5, epochs: {epochs}}}"),
            ]),
    )
}

/// `(task, hit|miss)` for every call of a run, in order.
pub fn calls(out: &Json) -> Vec<(String, String)> {
    each_call(out, |c| (text(&c["component"]), text(&c["cache"])))
}

/// `f` of every call of a run's `--json` output, in order.
pub fn each_call<T>(out: &Json, f: impl Fn(&Json) -> T) -> Vec<T> {
    out["calls"].as_array().unwrap().iter().map(f).collect()
}

/// A JSON string field, owned.
pub fn text(v: &Json) -> String {
    v.as_str().unwrap().to_string()
}

/// `v` owned, to compare with [`calls`].
pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn warm_flow_is_one_hit_and_changed_hyperparameters_reuse_the_load() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 2000);
    let m = manifest(dir.path(), None, true);
    // Every run a second after the inputs were written: the cold run
    // remembers them by `stat` however soon after the writes it runs, so
    // the warm run reads nothing on any machine.
    let now = crate::support::settled_clock(&[&data, &m]);
    let at = |epochs| run_task_at(cache.path(), &m, "pipeline", &data, epochs, &[], Some(&now));

    let cold = at(5);
    assert!(
        cold["result"]
            .as_str()
            .unwrap()
            .starts_with("ok({rows: 2000, accuracy: "),
        "{cold}"
    );
    assert_eq!(
        calls(&cold),
        pairs(&[
            ("pipeline", "miss"),
            ("training", "miss"),
            ("load", "miss"),
            ("train", "miss"),
            ("load", "hit"),
            ("evaluate", "miss"),
        ])
    );
    assert_eq!(
        (cold["executed"].as_u64(), cold["hits"].as_u64()),
        (Some(5), Some(1))
    );

    let warm = at(5);
    assert_eq!(warm["cache"], "hit");
    assert_eq!(warm["executed"], 0);
    assert_eq!(warm["bytes_hashed"], 0, "a warm run reads no input");
    assert_eq!(calls(&warm), pairs(&[("pipeline", "hit")]));
    assert_eq!(warm["result"], cold["result"]);

    let changed = at(8);
    assert_eq!(
        calls(&changed),
        pairs(&[
            ("pipeline", "miss"),
            ("training", "miss"),
            ("load", "hit"),
            ("train", "miss"),
            ("load", "hit"),
            ("evaluate", "miss"),
        ])
    );
}

#[test]
fn a_second_flow_hits_the_shared_sub_flow() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 1000);
    let m = manifest(dir.path(), None, true);
    run_task(cache.path(), &m, "pipeline", &data, 4);
    let other = run_task(cache.path(), &m, "compare", &data, 4);
    assert_eq!(other["cache"], "miss");
    let c = calls(&other);
    assert_eq!(c[0], ("compare".into(), "miss".into()));
    assert_eq!(
        c[1],
        ("training".into(), "hit".into()),
        "trained by the pipeline already"
    );
    // The second training (twice the epochs) runs, reusing the parsed CSV.
    assert_eq!(
        c[2..],
        pairs(&[("training", "miss"), ("load", "hit"), ("train", "miss")])
    );
}

#[test]
fn a_changed_leaf_misses_exactly_on_the_calls_above_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 1000);
    run_task(
        cache.path(),
        &manifest(dir.path(), None, true),
        "pipeline",
        &data,
        4,
    );
    let train2 = dir.path().join("train2.wasm");
    fs::write(
        &train2,
        with_custom_section(&fs::read(example("ml_train")).unwrap(), b"v2"),
    )
    .unwrap();
    let m2 = manifest(dir.path(), Some(&train2), true);
    let out = run_task(cache.path(), &m2, "pipeline", &data, 4);
    assert_eq!(
        calls(&out),
        pairs(&[
            ("pipeline", "miss"),
            ("training", "miss"),
            ("load", "hit"),
            ("train", "miss"),
            ("load", "hit"),
            // Same weights from the same code: evaluate's closure and arguments are unchanged.
            ("evaluate", "hit"),
        ])
    );
}

#[test]
fn with_binds_the_same_flow_as_the_manifest() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 500);
    let first = run_task(
        cache.path(),
        &manifest(dir.path(), None, true),
        "pipeline",
        &data,
        3,
    );
    let mut cmd = cairn(cache.path());
    cmd.arg("run").arg(example("ml_pipeline"));
    for task in ["training", "load", "train", "evaluate"] {
        cmd.arg("--with").arg(example(&format!("ml_{task}")));
    }
    cmd.args([
        "--data",
        &format!("@{}", data.display()),
        "--hp",
        "{learning-rate: 0.5, epochs: 3}",
    ]);
    let again = json(&mut cmd);
    assert_eq!(again["cache"], "hit");
    assert_eq!(again["key"], first["key"]);
    assert_eq!(again["closure"], first["closure"]);
}

#[test]
fn a_missing_import_is_reported_at_load_naming_the_interface() {
    let cache = tempfile::tempdir().unwrap();
    let (code, stderr) = failure(
        cairn(cache.path())
            .arg("run")
            .arg(example("ml_pipeline"))
            .arg("--with")
            .arg(example("ml_load")),
    );
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`example:ml/training@0.1.0`"), "{stderr}");
}

#[test]
fn a_task_that_does_not_persist_leaves_nothing_in_the_store() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 500);
    let m = manifest(dir.path(), None, false);
    let first = run_task(cache.path(), &m, "pipeline", &data, 3);
    // Within the run, the second parse was still answered from memory.
    assert_eq!(calls(&first)[4], ("load".into(), "hit".into()));
    let load = json(
        cairn(cache.path())
            .arg("run")
            .arg("--manifest")
            .arg(&m)
            .args(["load", "--csv", &format!("@{}", data.display())]),
    );
    assert_eq!(load["cache"], "miss", "load's result was not stored");
    assert_eq!(
        run_task(cache.path(), &m, "pipeline", &data, 3)["cache"],
        "hit"
    );
}

#[test]
fn out_writes_result_blobs_to_files() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 100);
    let out_dir = dir.path().join("out");
    for _ in 0..2 {
        // A miss writes what the task made; a hit writes it from the cache.
        let out = cairn(cache.path())
            .arg("run")
            .arg(example("ml_load"))
            .args(["--csv", &format!("@{}", data.display()), "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dataset = fs::read(out_dir.join("result.ok")).unwrap();
        assert_eq!(dataset.len(), 8 + 100 * 9 * 4);
        assert_eq!(&dataset[..8], &[100, 0, 0, 0, 9, 0, 0, 0]);
        fs::remove_file(out_dir.join("result.ok")).unwrap();
    }
}

#[test]
fn an_impure_task_makes_the_flows_above_it_uncacheable_but_not_its_siblings() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 500);
    let m = manifest(dir.path(), None, true);
    let text = fs::read_to_string(&m).unwrap().replace(
        &format!(
            "evaluate = {:?}",
            example("ml_evaluate").display().to_string()
        ),
        &format!(
            "evaluate = {{ path = {:?}, impure = true }}",
            example("ml_evaluate").display().to_string()
        ),
    );
    fs::write(&m, text).unwrap();
    run_task(cache.path(), &m, "pipeline", &data, 3);
    let again = run_task(cache.path(), &m, "pipeline", &data, 3);
    assert_eq!(
        calls(&again),
        pairs(&[
            ("pipeline", "uncacheable"),
            ("training", "hit"),
            ("load", "hit"),
            ("evaluate", "uncacheable"),
        ])
    );
}

#[test]
fn marking_a_task_impure_later_makes_the_flow_above_it_miss() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 300);
    let m = manifest(dir.path(), None, true);
    assert_eq!(
        run_task(cache.path(), &m, "pipeline", &data, 2)["cache"],
        "miss"
    );
    assert_eq!(
        run_task(cache.path(), &m, "pipeline", &data, 2)["cache"],
        "hit"
    );
    let evaluate = example("ml_evaluate").display().to_string();
    let text = fs::read_to_string(&m).unwrap().replace(
        &format!("evaluate = {evaluate:?}"),
        &format!("evaluate = {{ path = {evaluate:?}, impure = true }}"),
    );
    fs::write(&m, text).unwrap();
    let impure = run_task(cache.path(), &m, "pipeline", &data, 2);
    assert_eq!(
        impure["cache"], "uncacheable",
        "the stored pure result must not answer"
    );
}

#[test]
fn a_task_that_cannot_be_loaded_fails_only_the_runs_that_need_it() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), 500);
    let whole = manifest(dir.path(), None, true);
    let first = run_task(cache.path(), &whole, "pipeline", &data, 3);
    // `compare` (a flow over `training`, which `pipeline` does not bind)
    // now names a file that is not there.
    let gone = dir.path().join("gone.wasm");
    let text = fs::read_to_string(&whole).unwrap().replace(
        &format!("{:?}", example("ml_compare").display().to_string()),
        &format!("{:?}", gone.display().to_string()),
    );
    let broken = dir.path().join("broken.toml");
    fs::write(&broken, text).unwrap();
    let args = |task: &str| {
        let mut cmd = cairn(cache.path());
        cmd.arg("run").arg("--manifest").arg(&broken).args([
            task,
            "--data",
            &format!("@{}", data.display()),
            "--hp",
            "{learning-rate: 0.5, epochs: 3}",
        ]);
        cmd
    };
    // A run of `pipeline` goes on, warns, and answers with the same key.
    let out = args("pipeline").arg("--json").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let again: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["cache"], "hit");
    assert_eq!(again["key"], first["key"]);
    assert!(
        stderr.contains("task `compare` of the manifest cannot be loaded")
            && stderr.contains("gone.wasm"),
        "{stderr}"
    );
    // A run of `compare` itself fails with its own one-line error.
    let (code, stderr) = failure(&mut args("compare"));
    assert_ne!(code, 0);
    assert!(stderr.contains("gone.wasm"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // So does a run that needs the broken task: `train` gone, `pipeline` fails.
    let no_train = manifest(dir.path(), Some(&gone), true);
    let (_, stderr) = failure(
        cairn(cache.path())
            .arg("run")
            .arg("--manifest")
            .arg(&no_train)
            .arg("pipeline"),
    );
    assert!(stderr.contains("gone.wasm"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}
