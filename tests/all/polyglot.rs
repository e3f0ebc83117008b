//! One flow over children in three languages: `examples/polyglot` (Rust)
//! calls the Python task `py-stats`, the JavaScript task `js-report` and the
//! Rust task `words`. A cold run executes them all, a warm one is one hit
//! with nothing executed or read, and a child whose source changed runs
//! again with only the flow above it, while the other children hit.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::pipeline::{calls, pairs};
use crate::python::{built, csv, warm_cache};
use crate::support::{cairn, copy_dir, example, js_report, json, settled_clock};

/// A fresh cache holding the compiled Python builds and `js-report`: the
/// Python tests' warm cache, with the JavaScript child compiled into a copy
/// of it once per test run.
fn cache() -> tempfile::TempDir {
    static WARM: OnceLock<PathBuf> = OnceLock::new();
    let warm = WARM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("polyglot-cache");
        let _ = fs::remove_dir_all(&dir);
        copy_dir(warm_cache(), &dir);
        let csv = dir.with_extension("csv");
        fs::write(&csv, "x\n1\n").unwrap();
        json(
            cairn(&dir)
                .arg("run")
                .arg(js_report())
                .args(["head", "--csv"])
                .arg(format!("@{}", csv.display()))
                .args(["--n", "1"]),
        );
        dir
    });
    let dir = tempfile::tempdir().unwrap();
    copy_dir(warm, dir.path());
    dir
}

/// A manifest of the `polyglot` flow with `stats` (a Python build), `words`
/// and `report`.
fn manifest(dir: &Path, name: &str, stats: &Path) -> PathBuf {
    let text = format!(
        "[tasks]\nstats = {:?}\nwords = {:?}\nreport = {:?}\npolyglot = {:?}\n",
        stats.display().to_string(),
        example("words").display().to_string(),
        js_report().display().to_string(),
        example("polyglot").display().to_string(),
    );
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn report(cache: &Path, manifest: &Path, csv: &Path, now_ms: &str) -> Json {
    json(
        cairn(cache)
            .env("CAIRN_NOW_MS", now_ms)
            .arg("run")
            .arg("--manifest")
            .arg(manifest)
            .args(["polyglot", "--csv", &format!("@{}", csv.display())]),
    )
}

/// The calls of a cold run: the flow, then its children in the order it
/// calls them (the first rows, the statistics and their table, the words).
const COLD: &[(&str, &str)] = &[
    ("polyglot", "miss"),
    ("report", "miss"),
    ("stats", "miss"),
    ("report", "miss"),
    ("words", "miss"),
];

#[test]
fn a_flow_over_three_languages_misses_then_hits_with_nothing_executed() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), "data.csv", 320, "mixed");
    let m = manifest(dir.path(), "cairn.toml", &built().stats);
    let now = settled_clock(&[&data, &m]);

    let cold = report(cache.path(), &m, &data, &now);
    assert_eq!(calls(&cold), pairs(COLD));
    let result = cold["result"].as_str().unwrap();
    // The result is a WAVE string: its line breaks are `\n` escapes.
    let lines: Vec<&str> = result.trim_matches('"').split("\\n").collect();
    for line in [
        // js-report's head of the CSV, from the blob.
        "## First rows (js-report, JavaScript)",
        "| i | x | city | gap |",
        "| -1 | 5 | mixed |  |",
        // py-stats' numbers in js-report's table.
        "| x | 321 | 5.000 | 2.000 | 9.000 | 1.997 |",
        // words' counts in the flow's own table.
        "| lima | 107 |",
    ] {
        assert!(lines.contains(&line), "no {line:?} in {result}");
    }

    let warm = report(cache.path(), &m, &data, &now);
    assert_eq!(calls(&warm), pairs(&[("polyglot", "hit")]));
    assert_eq!(
        (warm["executed"].as_u64(), warm["bytes_hashed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(warm["result"], cold["result"]);
}

#[test]
fn a_changed_child_reruns_only_itself_and_the_flow() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), "data.csv", 320, "child");
    let before = manifest(dir.path(), "before.toml", &built().stats);
    let after = manifest(dir.path(), "after.toml", &built().edited);
    let now = settled_clock(&[&data, &before, &after]);

    let first = report(cache.path(), &before, &data, &now);
    assert_eq!(calls(&first), pairs(COLD));
    let changed = report(cache.path(), &after, &data, &now);
    assert_eq!(
        calls(&changed),
        pairs(&[
            ("polyglot", "miss"),
            ("report", "hit"),
            ("stats", "miss"),
            ("report", "miss"),
            ("words", "hit"),
        ]),
        "the edited Python child and the flow above it run; the table of its \
         new numbers is a new call; the JavaScript head and the Rust words hit"
    );
    assert_ne!(changed["result"], first["result"]);
}
