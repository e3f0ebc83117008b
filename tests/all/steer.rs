//! Seeing and steering the cache through the CLI: stats, ls, show, rm,
//! export, TTL expiry, budgets, explained misses, run history and graphs.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::support::{cairn, example, failure, json, ml_csv, stdout, with_custom_section};

/// The JSON lines a command printed.
fn json_lines(cmd: &mut assert_cmd::Command) -> Vec<Json> {
    stdout(cmd)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn hello(cache: &Path, name: &str, extra: &[&str]) -> Json {
    json(
        cairn(cache)
            .arg("run")
            .args(extra)
            .arg(example("hello"))
            .args(["greet", "--name", name]),
    )
}

/// [`hello`] with the cache's clock at `now_ms` (`CAIRN_NOW_MS`).
fn hello_at(now_ms: u64, cache: &Path, name: &str, extra: &[&str]) -> Json {
    json(
        cairn(cache)
            .env("CAIRN_NOW_MS", now_ms.to_string())
            .arg("run")
            .args(extra)
            .arg(example("hello"))
            .args(["greet", "--name", name]),
    )
}

/// Now, in ms since the epoch: a base for the times a test sets.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn stats_ls_show_rm_and_export_see_every_entry() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    ml_csv(&csv, 500, 3);
    let load = || {
        json(
            cairn(cache.path())
                .arg("run")
                .arg(example("ml_load"))
                .args(["--csv", &format!("@{}", csv.display())]),
        )
    };
    assert_eq!(load()["cache"], "miss");
    assert_eq!(load()["cache"], "hit");
    assert_eq!(hello(cache.path(), "Ada", &[])["cache"], "miss");

    let stats = &json_lines(cairn(cache.path()).args(["cache", "stats", "--json"]))[0];
    assert_eq!(stats["entries"], 2);
    assert_eq!(stats["hits"], 1);
    assert!(stats["blob_bytes"].as_u64().unwrap() > 10_000, "{stats}");
    assert_eq!(stats["recent"]["runs"], 3);
    assert_eq!(stats["recent"]["hits"], 1);

    let listed =
        json_lines(cairn(cache.path()).args(["cache", "ls", "--json", "--component", "ml_load"]));
    assert_eq!(listed.len(), 1, "filtered by component");
    let entry = &listed[0];
    assert_eq!(entry["hits"], 1);
    let key = entry["key"].as_str().unwrap().to_string();
    let text = stdout(cairn(cache.path()).args(["cache", "ls", "--sort", "size"]));
    assert!(
        text.lines().nth(1).unwrap().starts_with(&key[..12]),
        "{text}"
    );

    let shown = stdout(cairn(cache.path()).args(["cache", "show", &key[..8]]));
    for part in [
        "arg csv",
        &format!("@{}", csv.display()),
        "parse-csv",
        "hits",
    ] {
        assert!(shown.contains(part), "`{part}` missing from:\n{shown}");
    }

    // The dataset blob, raw, is exactly what the run's --out writes.
    let raw = dir.path().join("dataset.bin");
    stdout(
        cairn(cache.path())
            .args(["cache", "export", &key, "--to"])
            .arg(&raw),
    );
    let out = dir.path().join("out");
    stdout(
        cairn(cache.path())
            .args(["run", "--out"])
            .arg(&out)
            .arg(example("ml_load"))
            .args(["--csv", &format!("@{}", csv.display())]),
    );
    assert_eq!(
        fs::read(&raw).unwrap(),
        fs::read(out.join("result.ok")).unwrap()
    );
    let as_json = dir.path().join("v.json");
    stdout(
        cairn(cache.path())
            .args(["cache", "export", &key, "--format", "json", "--to"])
            .arg(&as_json),
    );
    let v: Json = serde_json::from_slice(&fs::read(&as_json).unwrap()).unwrap();
    assert_eq!(
        v["ok"]["len"].as_u64().unwrap(),
        fs::metadata(&raw).unwrap().len()
    );

    // A structured value cannot be raw; hello's string can.
    let hello_key = hello(cache.path(), "Ada", &[])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let txt = dir.path().join("hello.txt");
    stdout(
        cairn(cache.path())
            .args(["cache", "export", &hello_key, "--to"])
            .arg(&txt),
    );
    assert_eq!(fs::read_to_string(&txt).unwrap(), "Hello, Ada.");

    let (code, msg) = failure(cairn(cache.path()).args(["cache", "show", "ffff0000"]));
    assert_eq!(code, 2);
    assert!(msg.contains("cairn cache ls"), "{msg}");

    let removed = stdout(cairn(cache.path()).args(["cache", "rm", &key]));
    assert!(removed.contains("removed 1 entries"), "{removed}");
    let left = json_lines(cairn(cache.path()).args(["cache", "ls", "--json"]));
    assert_eq!(left.len(), 1);
    assert_eq!(load()["cache"], "miss", "a removed entry runs again");
}

#[test]
fn an_expired_entry_is_a_miss_reported_as_expired() {
    // The cache's clock is set, never waited for: made at `t`, looked up a
    // second later, then an hour later (`CAIRN_NOW_MS`).
    let cache = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (second, hour) = (1_000, 3_600_000);
    assert_eq!(hello_at(t, cache.path(), "Ada", &[])["cache"], "miss");
    assert_eq!(
        hello_at(t + second, cache.path(), "Ada", &["--ttl", "1h"])["cache"],
        "hit"
    );
    let out = hello_at(
        t + second,
        cache.path(),
        "Ada",
        &["--ttl", "100ms", "--explain"],
    );
    assert_eq!(out["cache"], "expired");
    assert_eq!(out["calls"][0]["why"], "the stored result expired");
    // Run again at the same moment, the result made just now is fresh.
    assert_eq!(
        hello_at(t + second, cache.path(), "Ada", &["--ttl", "100ms"])["cache"],
        "hit"
    );

    // A task's own ttl, from the manifest.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cairn.toml");
    fs::write(
        &manifest,
        format!(
            "[tasks]\nhello = {{ path = {:?}, ttl = \"300ms\" }}\n",
            example("hello").display().to_string()
        ),
    )
    .unwrap();
    let run = |now_ms: u64| {
        json(
            cairn(cache.path())
                .env("CAIRN_NOW_MS", now_ms.to_string())
                .arg("run")
                .arg("--manifest")
                .arg(&manifest)
                .args(["hello", "greet", "--name", "Bo"]),
        )["cache"]
            .clone()
    };
    assert_eq!(run(t), "miss");
    assert_eq!(run(t + 100), "hit", "within its 300ms");
    assert_eq!(run(t + hour), "expired");
    // Expired entries are what `gc` removes first: the one just made
    // expires too, an hour on.
    let gc = &json_lines(
        cairn(cache.path())
            .env("CAIRN_NOW_MS", (t + 2 * hour).to_string())
            .args(["cache", "gc", "--json"]),
    )[0];
    assert_eq!(gc["expired"], 1, "{gc}");
    // … and then the index is compacted.
    let (before, after) = (gc["index_before"].as_u64(), gc["index_after"].as_u64());
    assert!(after.unwrap() <= before.unwrap(), "{gc}");

    let (code, msg) = failure(
        cairn(cache.path())
            .arg("run")
            .arg("--manifest")
            .arg({
                fs::write(
                    dir.path().join("bad.toml"),
                    "[tasks]\nhello = { path = \"h.wasm\", ttl = \"soon\" }\n",
                )
                .unwrap();
                dir.path().join("bad.toml")
            })
            .args(["hello", "greet", "--name", "Bo"]),
    );
    assert_eq!(code, 2);
    assert!(msg.contains("bad.toml:2") && msg.contains("ttl"), "{msg}");
}

#[test]
fn a_size_budget_is_applied_after_runs() {
    let cache = tempfile::tempdir().unwrap();
    for name in ["Ada", "Bo", "Cy"] {
        hello(cache.path(), name, &[]);
    }
    let set = stdout(cairn(cache.path()).args(["cache", "config", "--max-size", "1B"]));
    assert!(set.contains("max_size = 1 B"), "{set}");
    let out = cairn(cache.path())
        .arg("run")
        .arg(example("hello"))
        .args(["greet", "--name", "Di"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("size budget: evicted"), "{err}");
    let left = json_lines(cairn(cache.path()).args(["cache", "ls", "--json"]));
    assert!(left.is_empty(), "nothing fits in one byte: {left:?}");
    stdout(cairn(cache.path()).args(["cache", "config", "--max-size", "none"]));
}

/// A manifest over the built ML components, `train` replaceable.
fn ml_manifest(dir: &Path, train: &Path) -> PathBuf {
    crate::pipeline::manifest(dir, Some(train), true)
}

fn pipeline(cache: &Path, manifest: &Path, data: &Path, epochs: u32) -> Json {
    crate::pipeline::run_task_with(cache, manifest, "pipeline", data, epochs, &["--explain"])
}

/// `task: why` for each call of a `--json` run that did not hit.
fn whys(out: &Json) -> Vec<String> {
    out["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cache"] != "hit")
        .map(|c| {
            format!(
                "{}: {}",
                c["component"].as_str().unwrap(),
                c["why"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn explain_names_the_changed_argument_and_the_changed_component() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    ml_csv(&data, 800, 5);
    let manifest = ml_manifest(dir.path(), &example("ml_train"));
    let first = pipeline(cache.path(), &manifest, &data, 3);
    assert!(
        whys(&first)
            .iter()
            .all(|w| w.ends_with("first call of this export")),
        "{:?}",
        whys(&first)
    );

    let changed_hp = whys(&pipeline(cache.path(), &manifest, &data, 4));
    assert_eq!(
        changed_hp.len(),
        4,
        "pipeline, training, train, evaluate: {changed_hp:?}"
    );
    assert!(
        changed_hp[0].starts_with("pipeline: argument `hp` changed: {learning-rate: 0.5, epochs: 3} → {learning-rate: 0.5, epochs: 4}"),
        "{changed_hp:?}"
    );
    assert!(changed_hp
        .iter()
        .any(|w| w.starts_with("train: argument `hp` changed")));
    // evaluate got other weights: its argument changed, named by parameter.
    assert!(
        changed_hp
            .iter()
            .any(|w| w.starts_with("evaluate: argument `weights` changed")),
        "{changed_hp:?}"
    );

    // Same program, other bytes: the closure changed at `train`.
    let train2 = dir.path().join("train2.wasm");
    fs::write(
        &train2,
        with_custom_section(&fs::read(example("ml_train")).unwrap(), b"v2"),
    )
    .unwrap();
    let manifest2 = ml_manifest(dir.path(), &train2);
    let changed_code = whys(&pipeline(cache.path(), &manifest2, &data, 4));
    assert!(
        changed_code[0].starts_with("pipeline: component train (via example:ml/training@0.1.0 → example:ml/train@0.1.0) changed"),
        "{changed_code:?}"
    );
    assert!(changed_code
        .iter()
        .any(|w| w.starts_with("train: component train changed")));

    // `cairn explain` answers for the latest run, from its record.
    let explained = stdout(cairn(cache.path()).arg("explain"));
    assert!(explained.contains("miss pipeline"), "{explained}");
    assert!(explained.contains("component train (via"), "{explained}");
}

#[test]
fn runs_are_listed_and_graphs_show_every_call() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.csv");
    ml_csv(&data, 300, 9);
    let manifest = ml_manifest(dir.path(), &example("ml_train"));
    let cold = pipeline(cache.path(), &manifest, &data, 2);
    pipeline(cache.path(), &manifest, &data, 2);
    let runs = json_lines(cairn(cache.path()).args(["runs", "--json"]));
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["id"].as_u64(), runs[1]["id"].as_u64()),
        (Some(2), Some(1))
    );
    let first = &runs[1];
    let calls = first["calls"].as_array().unwrap();
    let keys = |calls: &[Json]| -> Vec<String> {
        calls
            .iter()
            .map(|c| c["key"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(calls),
        keys(cold["calls"].as_array().unwrap()),
        "the run as it ran"
    );
    assert_eq!(
        runs[0]["calls"].as_array().unwrap().len(),
        1,
        "the warm run is one hit"
    );

    let page = dir.path().join("run1.html");
    stdout(
        cairn(cache.path())
            .args(["graph", "1", "--html"])
            .arg(&page),
    );
    let html = fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    for c in calls {
        assert!(
            html.contains(c["key"].as_str().unwrap()),
            "every call's key is on the page"
        );
    }
    assert!(
        !html.contains("<script src") && !html.contains("http://"),
        "self-contained"
    );

    let mermaid = stdout(cairn(cache.path()).args(["graph", "1"]));
    assert!(mermaid.starts_with("flowchart TD"), "{mermaid}");
    let edges = calls.len() - 1;
    assert_eq!(mermaid.matches("-->").count(), edges, "a tree: {mermaid}");
    let dot = stdout(cairn(cache.path()).args(["graph", "1", "--format", "dot"]));
    assert!(
        dot.starts_with("digraph") && dot.matches(" -> ").count() == edges,
        "{dot}"
    );

    let (code, msg) = failure(cairn(cache.path()).args(["graph", "99"]));
    assert_eq!(code, 2);
    assert!(msg.contains("cairn runs"), "{msg}");
}

#[test]
fn verify_reexecutes_a_sample() {
    let cache = tempfile::tempdir().unwrap();
    for name in ["Ada", "Bo"] {
        hello(cache.path(), name, &[]);
    }
    let out = stdout(cairn(cache.path()).args(["cache", "verify", "--reexecute"]));
    assert!(
        out.contains("2 entries checked") && out.contains("2 re-executed, 0 differ"),
        "{out}"
    );
    let out = stdout(cairn(cache.path()).args(["cache", "verify", "--sample", "1"]));
    assert!(out.contains("1 entries checked"), "{out}");
}
