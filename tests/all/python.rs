//! Python tasks (componentize-py) through the CLI: the `py-stats` example
//! alone (the `polyglot` flow over it is in `polyglot.rs`).
//!
//! A componentize-py component is ~18 MB and compiling it is slow, and
//! cairn keeps compiled code per cache: every test here starts from a copy
//! of one cache in which both Python builds were compiled once per run.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::support::{build_python, cairn, copy_dir, json, python_example, settled_clock};

/// The Python builds and a cache that has compiled them.
pub(crate) struct Built {
    pub(crate) stats: PathBuf,
    /// `py-stats` with one line of its source changed: the sample standard
    /// deviation instead of the population's.
    pub(crate) edited: PathBuf,
    warm_cache: PathBuf,
}

/// The line of `examples/py-stats/app.py` that the edited build changes.
const POPULATION: &str = "stddev=math.sqrt(s.m2 / s.count),";
const SAMPLE: &str = "stddev=math.sqrt(s.m2 / max(s.count - 1, 1)),";

pub(crate) fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let stats = python_example("py-stats");
        let source =
            fs::read_to_string(crate::support::root().join("examples/py-stats/app.py")).unwrap();
        assert!(
            source.contains(POPULATION),
            "app.py changed: update POPULATION"
        );
        let app = tmp.join("py-stats-edited");
        fs::create_dir_all(&app).unwrap();
        fs::write(app.join("app.py"), source.replace(POPULATION, SAMPLE)).unwrap();
        let edited = app.join("py_stats.wasm");
        build_python("py-stats", &edited, Some(&app));

        let warm_cache = tmp.join("python-cache");
        let _ = fs::remove_dir_all(&warm_cache);
        let csv = tmp.join("python-warm.csv");
        fs::write(&csv, "x\n1\n").unwrap();
        for component in [&stats, &edited] {
            describe(&warm_cache, component, &csv);
        }
        Built {
            stats,
            edited,
            warm_cache,
        }
    })
}

/// A fresh cache holding only the compiled Python builds (and the results
/// of compiling them: a one-cell CSV no test uses).
pub(crate) fn cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&built().warm_cache, dir.path());
    dir
}

/// The cache the Python builds were compiled into, to copy from.
pub(crate) fn warm_cache() -> &'static Path {
    &built().warm_cache
}

fn describe(cache: &Path, component: &Path, csv: &Path) -> Json {
    describe_at(cache, component, csv, None)
}

/// `describe` of `csv`, with the cache's clock at `now_ms` when given.
fn describe_at(cache: &Path, component: &Path, csv: &Path, now_ms: Option<&str>) -> Json {
    let mut cmd = cairn(cache);
    if let Some(now) = now_ms {
        cmd.env("CAIRN_NOW_MS", now);
    }
    json(
        cmd.arg("run")
            .arg(component)
            .args(["describe", "--csv", &format!("@{}", csv.display())]),
    )
}

/// A CSV of `rows` rows: `i` counts from 0, `x` repeats 2 4 4 4 5 5 7 9
/// (mean 5, population standard deviation 2), `city` is text and `gap` is
/// empty but every tenth row. `tag` makes the content unique.
pub(crate) fn csv(dir: &Path, name: &str, rows: usize, tag: &str) -> PathBuf {
    const X: [u32; 8] = [2, 4, 4, 4, 5, 5, 7, 9];
    let mut text = format!("i,x,city,gap\n-1,5,{tag},\n");
    for i in 0..rows {
        let gap = if i % 10 == 0 { "1.5" } else { "" };
        let city = ["Oslo", "Lima", "Rome"][i % 3];
        text.push_str(&format!("{i},{},{city},{gap}\n", X[i % 8]));
    }
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// One column of a `describe` result: (name, count, mean, min, max, stddev).
type Column = (String, u64, f64, f64, f64, f64);

/// The columns of a `describe` result (WAVE text).
fn columns(result: &Json) -> Vec<Column> {
    let text = result.as_str().unwrap();
    let inner = text.trim_start_matches("[{").trim_end_matches("}]");
    inner
        .split("}, {")
        .filter(|r| !r.is_empty())
        .map(|record| {
            let field = |name: &str| {
                record
                    .split(", ")
                    .find_map(|f| f.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_else(|| panic!("no {name} in {record}"))
                    .to_string()
            };
            let num = |name: &str| field(name).parse::<f64>().unwrap();
            (
                field("name").trim_matches('"').to_string(),
                field("count").parse().unwrap(),
                num("mean"),
                num("min"),
                num("max"),
                num("stddev"),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn python_task_streams_a_large_csv_then_hits() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    // Over 2 MiB: more than one chunk of the SDK's reader (1 MiB), rows
    // cut at the chunk boundaries.
    let rows = 200_000;
    let data = csv(dir.path(), "data.csv", rows, "first");
    assert!(fs::metadata(&data).unwrap().len() > 2 << 20);

    let cold = describe(cache.path(), &built().stats, &data);
    assert_eq!(
        (cold["cache"].as_str(), cold["executed"].as_u64()),
        (Some("miss"), Some(1))
    );
    let cols = columns(&cold["result"]);
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["i", "x", "gap"], "the text column is left out");
    let (_, n, mean, min, max, _) = &cols[0];
    assert_eq!(*n, rows as u64 + 1);
    let sum = (rows * (rows - 1) / 2) as f64 - 1.0;
    assert!(close(*mean, sum / (rows as f64 + 1.0)), "{mean}");
    assert_eq!((*min, *max), (-1.0, rows as f64 - 1.0));
    let (_, n, mean, min, max, stddev) = &cols[1];
    assert_eq!((*n, *min, *max), (rows as u64 + 1, 2.0, 9.0));
    let spread = 2.0 * (rows as f64 / (rows as f64 + 1.0)).sqrt();
    assert!(close(*mean, 5.0) && close(*stddev, spread), "{cols:?}");
    assert_eq!(cols[2].1, rows as u64 / 10, "empty cells are not counted");
    assert!(close(cols[2].2, 1.5) && close(cols[2].5, 0.0));

    let warm = describe(cache.path(), &built().stats, &data);
    assert_eq!(
        (warm["cache"].as_str(), warm["executed"].as_u64()),
        (Some("hit"), Some(0))
    );
    assert_eq!(warm["result"], cold["result"]);
}

#[test]
fn edited_python_source_misses_with_another_key_and_an_unchanged_rebuild_hits() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    let data = csv(dir.path(), "data.csv", 100, "edit");
    let first = describe(cache.path(), &built().stats, &data);
    assert_eq!(first["cache"], "miss");

    // componentize-py builds are not reproducible; build.sh keeps the
    // component of unchanged sources, so a rebuild changes no key.
    build_python("py-stats", &built().stats, None);
    let rebuilt = describe(cache.path(), &built().stats, &data);
    assert_eq!(
        (rebuilt["cache"].as_str(), &rebuilt["key"]),
        (Some("hit"), &first["key"])
    );

    let edited = describe(cache.path(), &built().edited, &data);
    assert_eq!(
        (edited["cache"].as_str(), edited["executed"].as_u64()),
        (Some("miss"), Some(1))
    );
    assert_ne!(edited["key"], first["key"]);
    let (before, after) = (columns(&first["result"]), columns(&edited["result"]));
    assert!(
        after[1].5 > before[1].5,
        "the edit (sample deviation) shows: {before:?} → {after:?}"
    );
}

#[test]
fn csv_blob_is_keyed_by_content_and_a_hit_reads_nothing() {
    let cache = cache();
    let dir = tempfile::tempdir().unwrap();
    let a = csv(dir.path(), "a.csv", 1000, "blob");
    let b = dir.path().join("b.csv");
    fs::copy(&a, &b).unwrap();
    // A second after both files were written: a run remembers them by
    // `stat`, however soon after the writes it runs.
    let now = settled_clock(&[&a, &b]);
    let run = |file: &Path| describe_at(cache.path(), &built().stats, file, Some(&now));

    let first = run(&a);
    assert_eq!(first["cache"], "miss");
    let other = run(&b);
    assert_eq!(
        (other["cache"].as_str(), &other["key"], &other["result"]),
        (Some("hit"), &first["key"], &first["result"]),
        "the same content in another file is the same input"
    );
    assert!(other["bytes_hashed"].as_u64().unwrap() > 0, "b.csv is new");
    let again = run(&b);
    assert_eq!(
        (again["cache"].as_str(), again["bytes_hashed"].as_u64()),
        (Some("hit"), Some(0)),
        "an unchanged input costs a stat, not a read"
    );
}
