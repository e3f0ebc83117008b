//! Bad input and damaged state through the CLI: each gives one line that
//! says what to do and a non-zero exit, and nothing already stored is lost.

use std::fs;
use std::path::Path;

use crate::support::{cairn, example, failure, json, ml_csv, walk};

/// A cache holding one `greet` result.
fn warm_cache() -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    json(
        cairn(cache.path())
            .arg("run")
            .arg(example("hello"))
            .args(["--name", "Ada"]),
    );
    cache
}

fn one_line(code_and_stderr: (i32, String), expect: &str) {
    let (code, stderr) = code_and_stderr;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expect), "expected `{expect}` in: {stderr}");
}

#[test]
fn a_cache_directory_that_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, "not a directory").unwrap();
    let run = cairn(&file.join("cache"))
        .arg("run")
        .arg(example("hello"))
        .args(["--name", "Ada"])
        .output()
        .unwrap();
    one_line(
        (
            run.status.code().unwrap(),
            String::from_utf8(run.stderr).unwrap(),
        ),
        "cannot create cache directory",
    );
}

/// A hit reads the index read-only, which does not check the file's length
/// against its layout: a cut index is reported by the first run that reads
/// what was cut or writes (here a miss), a garbage one by any run.
#[test]
fn a_garbage_or_truncated_index_is_reported_and_left_in_place() {
    for damage in [
        |p: &Path| fs::write(p, vec![0x5a; 10_000]).unwrap(),
        |p: &Path| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(f.metadata().unwrap().len() / 3).unwrap();
        },
    ] {
        let cache = warm_cache();
        let index = cache.path().join("index.redb");
        damage(&index);
        let before = fs::read(&index).unwrap();
        one_line(
            failure(
                cairn(cache.path())
                    .arg("run")
                    .arg(example("hello"))
                    .args(["--name", "a name not cached yet"]),
            ),
            "move it aside",
        );
        assert_eq!(
            fs::read(&index).unwrap(),
            before,
            "cairn never rewrites a damaged index"
        );
    }
}

#[test]
fn a_missing_or_cut_blob_is_a_miss_and_is_repaired() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    ml_csv(&csv, 3000, 1);
    let arg = format!("@{}", csv.display());
    let load = || {
        json(
            cairn(cache.path())
                .arg("run")
                .arg(example("ml_load"))
                .args(["--csv", &arg]),
        )
    };
    assert_eq!(load()["cache"], "miss");
    // The cache also keeps the component itself (for re-execution).
    let objects: Vec<_> = walk(&cache.path().join("objects"))
        .into_iter()
        .filter(|p| !fs::read(p).unwrap().starts_with(b"\0asm"))
        .collect();
    assert_eq!(objects.len(), 1, "the 108 KB dataset is an object file");
    for damage in [
        |p: &Path| fs::remove_file(p).unwrap(),
        |p: &Path| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(100)
                .unwrap()
        },
    ] {
        damage(&objects[0]);
        assert_eq!(load()["cache"], "miss", "the damaged entry re-executes");
        assert_eq!(
            fs::metadata(&objects[0]).unwrap().len(),
            8 + 3000 * 9 * 4,
            "and is repaired"
        );
        assert_eq!(load()["cache"], "hit");
    }
    let verify = cairn(cache.path())
        .args(["cache", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_manifest_with_errors_names_file_and_line() {
    let cache = warm_cache();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("cairn.toml");
    fs::write(
        &manifest,
        "[tasks]\nhello = \"hello.wasm\"\nbroken = { path = 1 }\n",
    )
    .unwrap();
    one_line(
        failure(
            cairn(cache.path())
                .args(["run", "--manifest"])
                .arg(&manifest)
                .arg("hello"),
        ),
        "cairn.toml:3:",
    );
}

#[test]
fn a_directory_given_as_a_file_argument() {
    let cache = warm_cache();
    let dir = tempfile::tempdir().unwrap();
    one_line(
        failure(cairn(cache.path()).arg("run").arg(example("words")).args([
            "total",
            "--text",
            &format!("@{}", dir.path().display()),
        ])),
        "is not a regular file",
    );
}

#[test]
fn a_damaged_argument_object_is_reported_by_verify_and_the_result_still_answers() {
    // A 100 KB argument is kept as an object file (for `cache show`,
    // `explain` and re-execution); one flipped byte must not go unseen. The
    // result (`Hello, AAA…!`, also an object) is told apart by its case.
    let cache = tempfile::tempdir().unwrap();
    let name = "a".repeat(100_000);
    let greet = || {
        json(cairn(cache.path()).arg("run").arg(example("hello")).args([
            "greet",
            "--name",
            &name,
            "--excited",
        ]))
    };
    let key = greet()["key"].as_str().unwrap().to_string();
    let args_object = walk(&cache.path().join("objects"))
        .into_iter()
        .find(|p| {
            let bytes = fs::read(p).unwrap();
            bytes.windows(1000).any(|w| w.iter().all(|b| *b == b'a'))
        })
        .expect("the arguments are an object file");
    let mut bytes = fs::read(&args_object).unwrap();
    bytes[50_000] ^= 1;
    fs::write(&args_object, bytes).unwrap();

    let out = cairn(cache.path())
        .args(["cache", "verify"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(text.contains(&format!("damaged arguments {key}")), "{text}");
    assert!(
        text.contains("0 damaged, 1 with damaged arguments"),
        "{text}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cairn cache rm"), "says what to do: {err}");
    assert!(
        !err.contains("miss"),
        "damaged arguments are not a miss: {err}"
    );
    // The result itself is intact and still answers its key.
    assert_eq!(greet()["cache"], "hit");
}

#[test]
fn a_damaged_or_torn_compiled_artefact_is_reported_and_compiled_again() {
    let cache = warm_cache();
    let artefact = walk(&cache.path().join("compiled"))
        .into_iter()
        .next()
        .expect("a compiled artefact");
    let mut bytes = fs::read(&artefact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&artefact, bytes).unwrap();
    let out = cairn(cache.path())
        .args(["cache", "verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let first = String::from_utf8_lossy(&out.stdout);
    let audit: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(
        audit["damaged_compiled"].as_array().unwrap().len(),
        1,
        "{audit}"
    );
    assert_eq!(audit["damaged"].as_array().unwrap().len(), 0, "{audit}");

    // What a power loss may leave of it (its file is not synced): nothing.
    fs::write(&artefact, b"").unwrap();
    let out = json(
        cairn(cache.path())
            .arg("run")
            .arg(example("hello"))
            .args(["--name", "Bob"]),
    );
    assert_eq!(out["result"], "\"Hello, Bob.\"", "{out}");
    assert!(fs::metadata(&artefact).unwrap().len() > 0, "written again");
    let verified = cairn(cache.path()).args(["cache", "verify"]).output();
    assert!(verified.unwrap().status.success(), "nothing damaged now");
}
