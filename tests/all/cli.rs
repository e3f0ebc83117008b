//! Black-box tests of the `cairn` binary on the example components.

use std::fs;

use crate::support::{cairn, component_of, example, failure, json, with_custom_section};

fn greet(cache: &std::path::Path, name: &str) -> serde_json::Value {
    json(cairn(cache).args(["run"]).arg(example("hello")).args([
        "greet",
        "--name",
        name,
        "--excited",
    ]))
}

#[test]
fn raw_prints_a_string_result_as_its_text() {
    let cache = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = cairn(cache.path());
        cmd.arg("run").arg(example("hello")).args(extra);
        crate::support::stdout(cmd.args([
            "greet",
            "--name",
            "Ada \"the\" first",
            "--excited",
            "false",
        ]))
    };
    assert_eq!(
        run(&[]),
        "\"Hello, Ada \\\"the\\\" first.\"\n",
        "WAVE by default"
    );
    assert_eq!(run(&["--raw"]), "Hello, Ada \"the\" first.\n");
}

#[test]
fn second_run_is_a_hit_with_the_same_result_and_nothing_executed() {
    let cache = tempfile::tempdir().unwrap();
    let first = greet(cache.path(), "Ada");
    let second = greet(cache.path(), "Ada");
    assert_eq!(first["cache"], "miss");
    assert_eq!(first["executed"], 1);
    assert_eq!(first["result"], "\"Hello, ADA!\"");
    assert_eq!(second["cache"], "hit");
    assert_eq!(second["executed"], 0);
    assert_eq!(second["hits"], 1);
    assert_eq!(second["result"], first["result"]);
    assert_eq!(second["key"], first["key"]);
}

/// The sync calls `cairn ARGS` makes on `cache`, counted by `strace`; `None`
/// (having said why) where strace may not trace (no ptrace in a container).
fn syncs_of(cache: &std::path::Path, args: &[&std::ffi::OsStr]) -> Option<usize> {
    let log = cache.join("strace.log");
    let traced = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg("-e")
        .arg("trace=fsync,fdatasync,sync_file_range,syncfs,sync,msync")
        .arg(assert_cmd::cargo::cargo_bin("cairn"))
        .env_remove("CAIRN_CACHE_DIR")
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output();
    let out = match traced {
        Ok(out) if out.status.success() => out,
        Ok(out) if String::from_utf8_lossy(&out.stderr).starts_with("strace: ") => {
            eprintln!(
                "skipped: strace cannot trace here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Ok(out) => panic!("cairn failed under strace: {out:?}"),
        Err(e) => panic!(
            "cannot start strace ({e}); install it (apt-get install strace), as .ci/setup does"
        ),
    };
    assert!(out.stdout.starts_with(b"\"Hello"), "{out:?}");
    let text = fs::read_to_string(&log).unwrap();
    fs::remove_file(&log).unwrap();
    Some(text.lines().filter(|l| l.contains("sync")).count())
}

#[test]
fn a_hit_makes_no_sync_call() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let args = [
        "run".as_ref(),
        hello.as_os_str(),
        "greet".as_ref(),
        "--name".as_ref(),
        "Ada".as_ref(),
    ];
    let Some(miss) = syncs_of(cache.path(), &args) else {
        return;
    };
    assert!(miss > 0, "a miss stores its result durably");
    for run in ["first hit", "second hit"] {
        assert_eq!(syncs_of(cache.path(), &args), Some(0), "{run}");
    }
    // What the hits logged reaches the run history.
    let out = cairn(cache.path()).args(["runs"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        listed.lines().filter(|l| l.contains("greet")).count(),
        3,
        "{listed}"
    );
}

/// A run that executes makes one commit of the index, whatever it stores:
/// results, compiled code, interfaces. What it syncs: redb's writable open
/// (1), the commit (2, one more if the file grows), redb's close (4: a
/// commit recording the allocator state, then the clean-shutdown header),
/// each new object file (1) and each directory given a new one (1). A
/// separate commit for compiled code or an interface would cost 2 more
/// each; the compiled artefact's file is not synced (it is checked against
/// its hash when loaded, and compiled again if torn).
#[test]
fn an_executing_run_makes_one_commit() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let changed = dir.path().join("changed.wasm");
    fs::write(
        &changed,
        with_custom_section(&fs::read(&hello).unwrap(), b"2"),
    )
    .unwrap();
    let run = |wasm: &std::path::Path, name: &str| {
        let args = ["run".as_ref(), wasm.as_os_str(), "greet".as_ref()];
        syncs_of(
            cache.path(),
            &[&args[..], &["--name".as_ref(), name.as_ref()]].concat(),
        )
    };
    // A fresh cache: redb makes the file (3) and the tables (a commit, 2);
    // the component's file (1; objects/, one of its subdirectories, and the
    // cache directory: 3 directories): 15. Syncing the artefact and
    // compiled/ made it 17; commits of their own for the stat cache, the
    // interface, the compiled functions and the artefact's record, 23.
    let Some(fresh) = run(&hello, "Ada") else {
        return;
    };
    // One more commit (2) is allowed, whatever the machine's speed: what
    // only spares work (the stat cache, compiled code) commits on its own
    // if a run outlasts the committer's 10 s wait for company.
    assert!(fresh <= 17, "{fresh} sync calls in a fresh cache");
    // A changed component in a warm cache: its file, at most 2 directories:
    // 10 or 11; 12 or 13 with the artefact synced, 20 to 22 with commits
    // of their own.
    let compiled = run(&changed, "Ada").unwrap();
    assert!(
        compiled <= 13,
        "{compiled} sync calls for a changed component"
    );
    // A new argument: the result alone.
    let warm = run(&hello, "Bob").unwrap();
    assert!(warm <= 8, "{warm} sync calls for a new argument");
    for (wasm, name) in [(&hello, "Ada"), (&changed, "Ada"), (&hello, "Bob")] {
        let out = json(
            cairn(cache.path())
                .arg("run")
                .arg(wasm)
                .args(["greet", "--name", name]),
        );
        assert_eq!(out["cache"], "hit", "{name} by {}: {out}", wasm.display());
    }
}

#[test]
fn a_changed_argument_misses() {
    let cache = tempfile::tempdir().unwrap();
    let ada = greet(cache.path(), "Ada");
    let bob = greet(cache.path(), "Bob");
    assert_eq!(bob["cache"], "miss");
    assert_eq!(bob["result"], "\"Hello, BOB!\"");
    assert_ne!(bob["key"], ada["key"]);
}

#[test]
fn a_changed_component_misses() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let original = fs::read(example("hello")).unwrap();
    let a = dir.path().join("a.wasm");
    let b = dir.path().join("b.wasm");
    fs::write(&a, with_custom_section(&original, b"1")).unwrap();
    fs::write(&b, with_custom_section(&original, b"2")).unwrap();
    let run = |wasm: &std::path::Path| {
        json(
            cairn(cache.path())
                .arg("run")
                .arg(wasm)
                .args(["--name", "Ada"]),
        )
    };
    let first = run(&a);
    assert_eq!(run(&a)["cache"], "hit");
    let changed = run(&b);
    assert_eq!(
        changed["cache"], "miss",
        "one byte of a custom section changes the component"
    );
    assert_ne!(changed["key"], first["key"]);
    assert_eq!(changed["result"], first["result"]);
}

#[test]
fn invoke_and_named_arguments_are_the_same_call() {
    let cache = tempfile::tempdir().unwrap();
    let named = greet(cache.path(), "Ada");
    let invoked = json(
        cairn(cache.path())
            .args(["run", "--invoke", "greet(\"Ada\", true)"])
            .arg(example("hello")),
    );
    assert_eq!(invoked["cache"], "hit");
    assert_eq!(invoked["key"], named["key"]);
    assert_eq!(invoked["result"], named["result"]);
}

#[test]
fn no_cache_neither_reads_nor_writes() {
    let cache = tempfile::tempdir().unwrap();
    greet(cache.path(), "Ada");
    let hello = example("hello");
    let off = || {
        json(
            cairn(cache.path())
                .args(["run", "--no-cache"])
                .arg(&hello)
                .args(["--name", "Ada", "--excited"]),
        )
    };
    let first = off();
    assert_eq!(
        (first["cache"].as_str(), first["executed"].as_u64()),
        (Some("miss"), Some(1))
    );
    assert_eq!(first["stored"], false);
    // A call never made with the cache on stays absent.
    let never = || {
        json(
            cairn(cache.path())
                .args(["run", "--no-cache"])
                .arg(&hello)
                .args(["--name", "Cy", "--excited"]),
        )
    };
    never();
    assert_eq!(greet(cache.path(), "Cy")["cache"], "miss");
}

#[test]
fn refresh_reruns_and_replaces() {
    let cache = tempfile::tempdir().unwrap();
    greet(cache.path(), "Ada");
    let refreshed = json(
        cairn(cache.path())
            .args(["run", "--refresh"])
            .arg(example("hello"))
            .args(["greet", "--name", "Ada", "--excited"]),
    );
    assert_eq!(refreshed["cache"], "miss");
    assert_eq!(refreshed["executed"], 1);
    assert_eq!(refreshed["stored"], true);
    assert_eq!(greet(cache.path(), "Ada")["cache"], "hit");
}

#[test]
fn text_output_is_the_wave_result() {
    let cache = tempfile::tempdir().unwrap();
    let out = cairn(cache.path())
        .arg("run")
        .arg(example("hello"))
        .args(["--name", "Ada Lovelace"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\"Hello, Ada Lovelace.\"\n"
    );
}

#[test]
fn cache_dir_comes_from_the_environment() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        let mut cmd = assert_cmd::Command::cargo_bin("cairn").unwrap();
        cmd.env("CAIRN_CACHE_DIR", cache.path())
            .arg("run")
            .arg(example("hello"))
            .args(["--name", "Env"]);
        json(&mut cmd)
    };
    assert_eq!(run()["cache"], "miss");
    assert_eq!(run()["cache"], "hit");
    assert!(cache.path().join("index.redb").exists());
}

/// A text file of `words` repeated.
fn text_file(dir: &std::path::Path, name: &str, words: &str, times: usize) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, words.repeat(times)).unwrap();
    path
}

#[test]
fn blob_input_is_keyed_by_content_and_not_read_when_warm() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = text_file(dir.path(), "t.txt", "the cat and the hat; the end\n", 1000);
    let arg = format!("@{}", text.display());
    // A clock a second after the file was written: the first run may
    // remember it by `stat`, however soon after the write it runs.
    let now = crate::support::settled_clock(&[&text]);
    let top = || {
        json(
            cairn(cache.path())
                .env("CAIRN_NOW_MS", &now)
                .arg("run")
                .arg(example("words"))
                .args(["top", "--text", &arg, "--n", "2"]),
        )
    };
    let first = top();
    assert_eq!(first["cache"], "miss");
    assert_eq!(
        first["result"],
        "[{word: \"the\", count: 3000}, {word: \"and\", count: 1000}]"
    );
    let warm = top();
    assert_eq!(warm["cache"], "hit");
    assert_eq!(
        warm["bytes_hashed"], 0,
        "an unchanged input costs a stat, not a read"
    );
    // New content under the same name is a new key.
    fs::write(&text, "dog dog cat\n").unwrap();
    let changed = top();
    assert_eq!(changed["cache"], "miss");
    assert_eq!(
        changed["result"],
        "[{word: \"dog\", count: 2}, {word: \"cat\", count: 1}]"
    );
}

#[test]
fn same_content_in_another_file_hits() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = text_file(dir.path(), "a.txt", "one two two\n", 10);
    let b = text_file(dir.path(), "b.txt", "one two two\n", 10);
    let total = |p: &std::path::Path| {
        let arg = format!("@{}", p.display());
        json(
            cairn(cache.path())
                .arg("run")
                .arg(example("words"))
                .args(["total", "--text", &arg]),
        )
    };
    assert_eq!(total(&a)["result"], "30");
    let other = total(&b);
    assert_eq!(other["cache"], "hit");
    assert_eq!(other["result"], "30");
}

#[test]
fn inspect_lists_exports_with_signatures() {
    let cache = tempfile::tempdir().unwrap();
    let out = cairn(cache.path())
        .arg("inspect")
        .arg(example("words"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("example:words/count@0.1.0#top: func(text: borrow<blob>, n: u32) -> list<record { word: string, count: u32 }>"),
        "{text}"
    );
    assert!(text.contains("cairn:task/blobs@0.1.0"), "{text}");
}

/// A component built the way componentize-py builds one: besides the
/// task's own `double`, the runtime's `exports#init`.
fn with_runtime_init(dir: &std::path::Path) -> std::path::PathBuf {
    let wit = "package test:py;\n\
               world task {\n\
                 export exports: interface {\n\
                   init: func(app-name: u32, symbols: u32, stub-wasi: bool);\n\
                 }\n\
                 export double: func(n: u32) -> u32;\n\
               }\n";
    let wat = r#"(module
  (func (export "exports#init") (param i32 i32 i32))
  (func (export "double") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2))))"#;
    let path = dir.join("py-like.wasm");
    std::fs::write(&path, crate::support::component(wit, wat)).unwrap();
    path
}

#[test]
fn inspect_hides_a_language_runtimes_own_exports_and_run_picks_the_tasks() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = with_runtime_init(cache.path());
    let text = |args: &[&str]| {
        let out = cairn(cache.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let path = wasm.to_str().unwrap();

    let listed = text(&["inspect", path]);
    assert!(
        listed.contains("  double: func(n: u32) -> u32\n"),
        "{listed}"
    );
    assert!(!listed.contains("exports#init:"), "{listed}");
    assert!(
        listed.contains("hidden, a language runtime's own: exports#init (componentize-py)"),
        "{listed}"
    );
    let all = text(&["inspect", "--all", path]);
    assert!(
        all.contains("  exports#init: func(app-name: u32, symbols: u32, stub-wasi: bool)  (componentize-py internal)"),
        "{all}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&text(&["inspect", "--json", path])).unwrap();
    let flags: Vec<_> = json["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].clone(),
                e["internal"].clone(),
                e["runtime"].clone(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("double".into(), false.into(), serde_json::Value::Null),
            ("exports#init".into(), true.into(), "componentize-py".into()),
        ]
    );

    // The task's own function is its only one: no need to name it.
    let out = text(&["run", "--json", path, "--n", "21"]);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["result"], "42", "{out}");
    // A bare `init` is not the runtime's setup; only its full path is.
    let (code, stderr) = failure(cairn(cache.path()).args(["run", path, "init"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("has no export `init`"), "{stderr}");
}

/// Asserts a one-line error with exit code 2, and that the cache still answers.
fn rejected(cache: &std::path::Path, cmd: &mut assert_cmd::Command, expect: &str) {
    let (code, stderr) = failure(cmd);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.contains(expect), "expected `{expect}` in: {stderr}");
    assert_eq!(
        greet(cache, "Ada")["cache"],
        "hit",
        "nothing stored was lost"
    );
}

#[test]
fn bad_input_gives_one_line_and_exit_2() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    greet(cache.path(), "Ada");
    let hello = example("hello");
    let c = cache.path();
    rejected(
        c,
        cairn(c).arg("run").arg(&hello).arg("wave"),
        "has no export `wave`; it exports: greet",
    );
    rejected(
        c,
        cairn(c)
            .arg("run")
            .arg(&hello)
            .args(["greet", "--name", "Ada", "--excited", "maybe"]),
        "is not a bool",
    );
    rejected(
        c,
        cairn(c)
            .arg("run")
            .arg(&hello)
            .args(["greet", "--name", "Ada", "--volume", "11"]),
        "no parameter `volume`",
    );
    rejected(
        c,
        cairn(c).arg("run").arg(&hello).args(["greet", "--excited"]),
        "missing --name",
    );
    rejected(
        c,
        cairn(c)
            .args(["run", "--invoke", "greet(1, true)"])
            .arg(&hello),
        "greet",
    );
    let core = dir.path().join("core.wasm");
    fs::write(
        &core,
        wat::parse_str("(module (func (export \"f\")))").unwrap(),
    )
    .unwrap();
    rejected(
        c,
        cairn(c).arg("run").arg(&core),
        "core WebAssembly module, not a component",
    );
    let garbage = dir.path().join("garbage.wasm");
    fs::write(&garbage, b"definitely not wasm").unwrap();
    rejected(
        c,
        cairn(c).arg("run").arg(&garbage),
        "not a WebAssembly component",
    );
    rejected(
        c,
        cairn(c).arg("run").arg(dir.path().join("missing.wasm")),
        "missing.wasm",
    );
    let words = example("words");
    rejected(
        c,
        cairn(c)
            .arg("run")
            .arg(&words)
            .args(["total", "--text", "@/no/such/file"]),
        "argument `text`",
    );
}

#[test]
fn help_describes_every_command() {
    let cache = tempfile::tempdir().unwrap();
    let out = cairn(cache.path()).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for cmd in ["run", "inspect"] {
        assert!(help.contains(cmd), "{help}");
    }
    let out = cairn(cache.path())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--invoke",
        "--json",
        "--no-cache",
        "--refresh",
        "--cache-dir",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

#[test]
fn many_processes_share_one_cache_and_keep_every_result() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let bin = assert_cmd::cargo::cargo_bin("cairn");
    // 8 processes at a time, 10 rounds each; names overlap across workers so
    // that the same key is written by several processes.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (bin, cache, hello) = (bin.clone(), cache.path().to_path_buf(), hello.clone());
            std::thread::spawn(move || {
                for round in 0..10 {
                    let name = format!("n{}", (w * 3 + round) % 20);
                    let out = std::process::Command::new(&bin)
                        .arg("--cache-dir")
                        .arg(&cache)
                        .arg("run")
                        .arg(&hello)
                        .args(["greet", "--name", &name])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_eq!(
                        String::from_utf8(out.stdout).unwrap(),
                        format!("\"Hello, {name}.\"\n")
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for i in 0..20 {
        let name = format!("n{i}");
        let out = json(
            cairn(cache.path())
                .arg("run")
                .arg(&hello)
                .args(["greet", "--name", &name]),
        );
        assert_eq!(out["cache"], "hit", "{name} was stored");
        assert_eq!(out["result"], format!("\"Hello, {name}.\""));
    }
}

#[test]
fn limits_and_output_from_the_command_line() {
    let cache = tempfile::tempdir().unwrap();
    let hostile = crate::support::guest("hostile");
    let (code, stderr) = failure(
        cairn(cache.path())
            .args(["run", "--timeout", "200ms"])
            .arg(&hostile)
            .arg("spin"),
    );
    assert_eq!(code, 1, "a task failure exits 1: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("hit its time limit of 200ms"), "{stderr}");
    let (code, stderr) = failure(
        cairn(cache.path())
            .args(["run", "--max-memory", "32MiB"])
            .arg(&hostile)
            .args(["hog", "--mib", "64"]),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("memory limit of 32 MiB"), "{stderr}");
    // --verbose shows what a call wrote, on a miss and, from the cache, on a hit.
    for expect in ["miss", "hit"] {
        let out = cairn(cache.path())
            .args(["run", "--verbose", "--json"])
            .arg(&hostile)
            .args(["say", "--text", "hello there"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["cache"], expect);
        assert!(
            stderr.contains("hostile.wasm stdout] hello there"),
            "{stderr}"
        );
        assert!(
            stderr.contains("hostile.wasm stderr] ereht olleh"),
            "{stderr}"
        );
    }
}

#[test]
fn several_invokes_and_a_batch_run_in_parallel_and_print_in_order() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let names = ["a", "b", "c", "a", "d", "a"];
    let mut cmd = cairn(cache.path());
    cmd.arg("run");
    for n in names {
        cmd.args(["--invoke", &format!("greet({n:?}, false)")]);
    }
    let out = cmd.arg(&hello).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let results: Vec<&str> = lines
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = names.iter().map(|n| format!("\"Hello, {n}.\"")).collect();
    assert_eq!(results, expected, "one line per call, in the order given");
    let executed: u64 = lines.iter().map(|l| l["executed"].as_u64().unwrap()).sum();
    assert_eq!(executed, 4, "each distinct call executes once");

    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("calls.txt");
    fs::write(
        &batch,
        "# names\ngreet(\"a\", false)\n\ngreet(\"e\", true)\n",
    )
    .unwrap();
    let out = cairn(cache.path())
        .arg("run")
        .arg("--batch")
        .arg(&batch)
        .arg(&hello)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "\"Hello, a.\"\n\"Hello, E!\"\n"
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("2 calls: 1 hit, 1 executed"));

    // Each `cairn run` is one run in the history, however many calls it made.
    let out = cairn(cache.path())
        .args(["runs", "--json"])
        .output()
        .unwrap();
    let runs: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let roots = |run: &serde_json::Value| -> Vec<(String, String)> {
        let calls = run["calls"].as_array().unwrap();
        let roots = calls.iter().filter(|c| c["parent"].is_null());
        roots
            .map(|c| (c["key"].to_string(), c["cache"].as_str().unwrap().into()))
            .collect()
    };
    assert_eq!(runs.len(), 2, "newest first: the batch, then the invokes");
    let batch = roots(&runs[0]);
    let statuses: Vec<&str> = batch.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(statuses, ["hit", "miss"], "the batch's calls, in order");
    let invokes = roots(&runs[1]);
    assert_eq!(invokes.len(), names.len());
    assert_eq!(invokes[0].0, batch[0].0, "greet(\"a\", false) both times");
    let table = cairn(cache.path()).arg("runs").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("hello greet and 1 more"), "{table}");
}

/// A component importing an interface cairn does not provide (here
/// `wasi:keyvalue`) is refused in one line naming it, before it compiles;
/// `inspect` still shows it, marked.
#[test]
fn an_import_cairn_does_not_provide_is_named_in_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.wasm");
    fs::write(
        &app,
        component_of(
            r#"package test:app;
package wasi:keyvalue@0.2.0 {
  interface store { get: func() -> u32; }
}
world app {
  import wasi:keyvalue/store@0.2.0;
  export run: func() -> u32;
}"#,
            Some("app"),
            r#"(module
  (import "wasi:keyvalue/store@0.2.0" "get" (func $get (result i32)))
  (func (export "run") (result i32) (call $get)))"#,
        ),
    )
    .unwrap();
    let (code, stderr) = failure(cairn(cache.path()).arg("run").arg(&app).arg("run"));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(
        stderr.contains("imports `wasi:keyvalue/store@0.2.0`, which cairn does not provide"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rebuild the component without it"),
        "{stderr}"
    );
    let inspect = json(cairn(cache.path()).arg("inspect").arg(&app));
    assert_eq!(
        inspect["unprovided"],
        serde_json::json!(["wasi:keyvalue/store@0.2.0"])
    );
}

#[test]
fn wit_takes_a_manifest_task_by_name() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[tasks]\nwords = {:?}\n",
        example("words").display().to_string()
    );
    fs::write(dir.path().join("cairn.toml"), manifest).unwrap();
    let mut cmd = cairn(cache.path());
    cmd.current_dir(dir.path()).args(["wit", "words"]);
    let written = json(&mut cmd);
    assert_eq!(
        written["written"][1]["imports"][0], "example:words/count@0.1.0",
        "{written}"
    );
    let wit = fs::read_to_string(dir.path().join("wit/deps/example-words/words.wit")).unwrap();
    assert!(
        wit.contains("top: func(text: borrow<blob>, n: u32)"),
        "{wit}"
    );

    let (code, stderr) = failure(
        cairn(cache.path())
            .current_dir(dir.path())
            .args(["wit", "sentences"]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no task `sentences`; it has: words"),
        "{stderr}"
    );
}
