//! JavaScript tasks (componentize-js, through `guest-sdk/js`): the
//! `js-report` example misses then hits, is keyed by its source and by its
//! blob inputs' content, and a default componentize-js build (importing
//! `wasi:http`) is refused with one line saying how to drop the import.
//!
//! A JS component carries the StarlingMonkey runtime (~12 MB) and its first
//! run compiles for a long while, so the tests share one cache directory per
//! run (each uses its own arguments, so their keys do not meet) and compile
//! `js-report` once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::support::{
    build_js, cairn, failure, js_report, js_report_with_http, json, root, settled_clock,
};

/// The cache the JavaScript tests share, emptied once per test run, with
/// `js-report` compiled into it by one call before any test uses it (tests
/// running at once would each compile it).
fn cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("javascript-cache");
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        json(cairn(&dir).arg("run").arg(js_report()).args([
            "table",
            "--title",
            "compile once",
            "--rows",
            "[]",
        ]));
        dir
    })
}

/// `js-report`'s `table` on one row, with `title`, run on `component`.
fn table(component: &Path, title: &str) -> serde_json::Value {
    json(cairn(cache()).arg("run").arg(component).args([
        "table",
        "--title",
        title,
        "--rows",
        r#"[{name: "a|b", count: 3, mean: 1.23456, min: -0.0001, max: inf, stddev: nan}]"#,
    ]))
}

#[test]
fn a_js_task_misses_then_hits_without_executing() {
    let first = table(&js_report(), "miss then hit");
    assert_eq!(first["cache"], "miss");
    assert_eq!(first["executed"], 1);
    assert_eq!(
        first["result"],
        r###""## miss then hit\n\n| name | count | mean | min | max | stddev |\n|:---|---:|---:|---:|---:|---:|\n| a\\|b | 3 | 1.235 | 0.000 | inf | NaN |\n""###
    );
    let again = table(&js_report(), "miss then hit");
    assert_eq!(again["cache"], "hit");
    assert_eq!(again["executed"], 0);
    assert_eq!(again["result"], first["result"]);
}

#[test]
fn head_reads_a_csv_blob_keyed_by_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "city,pop\n\"Paris, FR\",2100000\n\"say \"\"hi\"\"\",3\nRome,2800000\n";
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    fs::write(&a, csv).unwrap();
    fs::write(&b, csv).unwrap();
    let now = settled_clock(&[&a, &b]);
    let head = |p: &Path| {
        json(
            cairn(cache())
                .env("CAIRN_NOW_MS", &now)
                .arg("run")
                .arg(js_report())
                .args(["head", "--csv", &format!("@{}", p.display()), "--n", "2"]),
        )
    };
    let first = head(&a);
    assert_eq!(first["cache"], "miss");
    assert_eq!(
        first["result"],
        r#""| city | pop |\n|---|---|\n| Paris, FR | 2100000 |\n| say \"hi\" | 3 |\n""#
    );
    // The same content in another file: the same key.
    let other = head(&b);
    assert_eq!(other["cache"], "hit");
    assert_eq!(other["executed"], 0);
    assert_eq!(other["result"], first["result"]);
    // An unchanged file costs a stat, not a read.
    assert_eq!(head(&a)["bytes_hashed"], 0);
    // New content is a new key.
    fs::write(&b, "city,pop\nOslo,700000\n").unwrap();
    let changed = head(&b);
    assert_eq!(changed["cache"], "miss");
    assert_eq!(
        changed["result"],
        r#""| city | pop |\n|---|---|\n| Oslo | 700000 |\n""#
    );
}

#[test]
fn editing_the_js_source_misses() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples/js-report");
    // The example's WIT as it is; its source with `##` headings made `###`,
    // still importing the SDK's blob helpers from the repository.
    let source = fs::read_to_string(example.join("src/report.js"))
        .unwrap()
        .replace("`## ${cell(title)}", "`### ${cell(title)}")
        .replace(
            "'../../../guest-sdk/js/blob.js'",
            &format!("'{}'", root().join("guest-sdk/js/blob.js").display()),
        );
    assert!(source.contains("`### "), "the edit must change the source");
    let edited_js = dir.path().join("report.js");
    fs::write(&edited_js, source).unwrap();
    let edited = dir.path().join("edited.wasm");
    build_js(&edited_js, &example.join("wit"), "report", &edited);

    let before = table(&js_report(), "edited");
    assert!(before["result"]
        .as_str()
        .unwrap()
        .starts_with("\"## edited"));
    let after = table(&edited, "edited");
    assert_eq!(
        after["cache"], "miss",
        "a changed source is a new component"
    );
    assert_eq!(after["executed"], 1);
    assert!(
        after["result"]
            .as_str()
            .unwrap()
            .starts_with("\"### edited"),
        "{}",
        after["result"]
    );
}

#[test]
fn a_default_componentize_js_build_is_refused_naming_wasi_http() {
    let (code, stderr) = failure(
        cairn(cache())
            .arg("run")
            .arg(js_report_with_http())
            .args(["table", "--title", "t", "--rows", "[]"]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.contains("imports `wasi:http/types@0.2."), "{stderr}");
    assert!(stderr.contains("which cairn does not provide"), "{stderr}");
    assert!(stderr.contains("--disable http fetch-event"), "{stderr}");
}
