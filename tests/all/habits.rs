//! The command line's habits, on the real binary: every error one line (the
//! argument parser's too) or, under `--json`, one JSON object; safe defaults
//! (a time limit, Ctrl-C); the habits of the tools users know (`--env NAME`,
//! options after the component, completions, `RUST_LOG`); and a fuzz of bad
//! command lines.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as Process, Stdio};

use crate::support::{cairn, example, guest, json, stdout};

/// Runs `cairn` with `args` on `cache`: (exit code, stdout, stderr).
fn run_args(cache: &Path, args: &[OsString]) -> (i32, String, String) {
    let out = cairn(cache).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Fails unless `stderr` is exactly one `error: …` line.
fn one_error_line(args: &[OsString], stderr: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line expected, got: {stderr}"
    );
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn argument_parser_errors_are_one_line_that_says_where_to_look() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello").display().to_string();
    let mut cases: Vec<Vec<OsString>> = vec![
        os(&["run", "--env", "嵑", &hello]),
        os(&["run", "--dir", "-0", &hello]),
        os(&["run", "--jobs", "[[[", &hello]),
        os(&["run", "--timeout", "soon", &hello]),
        os(&["run", "--bogus", &hello]),
        os(&["run"]),
        os(&["bogus"]),
        os(&[]),
        os(&["cache"]),
        os(&["cache", "ls", "--sort", "colour"]),
        os(&["completions", "tcsh"]),
    ];
    {
        use std::os::unix::ffi::OsStringExt;
        let mut bad = os(&["run", "--invoke"]);
        bad.push(OsString::from_vec(vec![b'f', 0xff, b'(', b')']));
        bad.push(hello.clone().into());
        cases.push(bad);
    }
    for args in cases {
        let (code, out, err) = run_args(cache.path(), &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        one_error_line(&args, &err);
        assert!(
            err.contains("--help`"),
            "{args:?}: says where to look: {err}"
        );
    }
    // The one naming the subcommand points at its help.
    let (_, _, err) = run_args(cache.path(), &os(&["run", "--jobs", "x", &hello]));
    assert!(err.contains("see `cairn run --help`"), "{err}");
}

#[test]
fn help_and_version_still_print_and_exit_0() {
    let cache = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["run", "--help"],
        &["cache", "verify", "--help"],
    ] {
        let (code, out, _) = run_args(cache.path(), &os(args));
        assert_eq!(code, 0, "{args:?}");
        assert!(out.lines().count() >= 1, "{args:?}: {out}");
    }
    // --help after the component is cairn's too.
    let hello = example("hello").display().to_string();
    let (code, out, _) = run_args(cache.path(), &os(&["run", &hello, "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("--invoke"), "{out}");
}

#[test]
fn under_json_an_error_is_one_json_object_on_stdout() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello").display().to_string();
    for (args, kind, code) in [
        (&["run", "--json", &hello, "wave"][..], "unknown-export", 2),
        (&["run", "--json", "--jobs", "x", &hello], "usage", 2),
        (&["run", &hello, "greet", "--json"], "bad-arguments", 2),
        (&["cache", "push", "--all", "--json"], "bad-arguments", 2),
    ] {
        let (got, out, err) = run_args(cache.path(), &os(args));
        assert_eq!(got, code, "{args:?}: {out} {err}");
        assert!(err.is_empty(), "{args:?}: stderr stays quiet: {err}");
        assert_eq!(out.lines().count(), 1, "{args:?}: {out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["kind"], kind, "{args:?}: {v}");
        assert_eq!(v["exit"], code);
        assert!(v["error"].as_str().unwrap().len() > 10, "{v}");
    }
    // A task failure keeps its exit code.
    let hostile = guest("hostile").display().to_string();
    let (got, out, _) = run_args(
        cache.path(),
        &os(&["run", "--json", "--timeout", "50ms", &hostile, "spin"]),
    );
    assert_eq!(got, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "task-failed");
}

#[test]
fn a_string_parameter_given_as_a_bare_flag_is_an_error_not_true() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello").display().to_string();
    let args = os(&["run", &hello, "greet", "--name", "--excited"]);
    let (code, _, err) = run_args(cache.path(), &args);
    assert_eq!(code, 2);
    one_error_line(&args, &err);
    assert!(err.contains("--name needs a value"), "{err}");
    // A bare bool is true, as before.
    let out =
        stdout(cairn(cache.path()).args(["run", &hello, "greet", "--name", "Ada", "--excited"]));
    assert_eq!(out.trim(), "\"Hello, ADA!\"");
}

#[test]
fn a_runaway_guest_is_stopped_by_a_time_limit_in_one_line_and_nothing_is_cached() {
    let cache = tempfile::tempdir().unwrap();
    let hostile = guest("hostile").display().to_string();
    let args = os(&["run", &hostile, "spin", "--timeout", "50ms"]);
    let (code, _, err) = run_args(cache.path(), &args);
    assert_eq!(code, 1, "{err}");
    one_error_line(&args, &err);
    assert!(err.contains("hit its time limit of 50ms"), "{err}");
    assert!(err.contains("nothing was cached"), "{err}");
    let ls = stdout(cairn(cache.path()).args(["cache", "ls", "--json"]));
    assert!(ls.trim().is_empty(), "nothing stored: {ls}");
    // `none` lifts the limit (checked on a call that returns).
    let out = stdout(cairn(cache.path()).args(["run", "--timeout", "none", &hostile, "ok"]));
    assert_eq!(out.trim(), "\"fine\"");
}

#[test]
fn ctrl_c_stops_a_runaway_guest_with_one_line_and_exit_130() {
    // Default settings: no time limit asked for. The test waits for the
    // call to start executing (a debug event), not for time to pass.
    let cache = tempfile::tempdir().unwrap();
    let hostile = guest("hostile");
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("cairn"))
        .env_remove("CAIRN_CACHE_DIR")
        .env("CAIRN_LOG", "debug")
        .arg("--cache-dir")
        .arg(cache.path())
        .arg("run")
        .arg(&hostile)
        .arg("spin")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "cairn ended early"
        );
        if line.contains("executing") {
            break;
        }
    }
    let status = Process::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "{rest}");
    let errors: Vec<&str> = rest.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        errors,
        ["error: interrupted; the interrupted call was not cached"],
        "{rest}"
    );
    let ls = stdout(cairn(cache.path()).args(["cache", "ls", "--json"]));
    assert!(ls.trim().is_empty(), "nothing stored: {ls}");
    // What was queued for the cache before the interrupt (here the hash of
    // the component file, remembered so that it is not read again) is
    // committed, not dropped with the process.
    let stats = json(cairn(cache.path()).args(["cache", "stats"]));
    assert_eq!(stats["files_remembered"], 1, "{stats}");
}

#[test]
fn env_name_copies_the_hosts_value_and_is_keyed_like_name_value() {
    let cache = tempfile::tempdir().unwrap();
    let hostile = guest("hostile").display().to_string();
    let key = |env: &str| {
        let out = stdout(cairn(cache.path()).env("CAIRN_TEST_MODE", "fast").args([
            "run",
            "--json",
            "--env",
            env,
            &hostile,
            "env-count",
        ]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["result"], "1", "{v}");
        v["key"].as_str().unwrap().to_string()
    };
    assert_eq!(key("CAIRN_TEST_MODE"), key("CAIRN_TEST_MODE=fast"));
    let args = os(&[
        "run",
        "--env",
        "CAIRN_TEST_SURELY_UNSET",
        &hostile,
        "env-count",
    ]);
    let (code, _, err) = run_args(cache.path(), &args);
    assert_eq!(code, 2);
    one_error_line(&args, &err);
    assert!(err.contains("is not set here"), "{err}");
}

#[test]
fn options_after_the_component_are_cairns_up_to_a_double_dash() {
    let cache = tempfile::tempdir().unwrap();
    let hostile = guest("hostile").display().to_string();
    // -v, --json and --no-cache after the component and its arguments.
    for _ in 0..2 {
        let out = cairn(cache.path())
            .args([
                "run",
                &hostile,
                "say",
                "--text",
                "hi",
                "-v",
                "--json",
                "--no-cache",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (v["executed"].as_u64(), v["stored"].as_bool()),
            (Some(1), Some(false)),
            "--no-cache was cairn's: {v}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("stdout] hi"), "-v was cairn's: {err}");
    }
    // After `--`, a cairn option's name is the task's parameter.
    let (code, _, err) = run_args(
        cache.path(),
        &os(&["run", &hostile, "say", "--text", "hi", "--", "--json", "x"]),
    );
    assert_eq!(code, 2);
    assert!(err.contains("no parameter `json`"), "{err}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let cache = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(cairn(cache.path()).args(["completions", shell]));
        assert!(script.contains("cairn"), "{shell}: {script}");
        assert!(script.contains("verify"), "{shell}: subcommands are in it");
    }
}

#[test]
fn every_admin_verb_speaks_json() {
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path();
    let hello = example("hello").display().to_string();
    let run = stdout(cairn(c).args(["run", "--json", &hello, "greet", "--name", "Ada"]));
    let key = serde_json::from_str::<serde_json::Value>(&run).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let to = c.join("out.txt");
    let to = to.display().to_string();
    for args in [
        vec!["explain", "--json"],
        vec!["cache", "verify", "--json"],
        vec!["cache", "config", "--json"],
        vec!["cache", "export", &key, "--to", &to, "--json"],
        vec!["cache", "rm", &key, "--json"],
    ] {
        let out = stdout(cairn(c).args(&args));
        for line in out.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {line}"));
        }
        assert!(!out.trim().is_empty(), "{args:?}");
    }
}

#[test]
fn rust_log_is_honoured_with_a_span_per_call_and_no_colour_in_a_pipe() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello").display().to_string();
    let out = cairn(cache.path())
        .env_remove("CAIRN_LOG")
        .env("RUST_LOG", "cairn_host=debug")
        .args(["run", &hello, "greet", "--name", "Ada"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let done = err
        .lines()
        .find(|l| l.contains("call finished"))
        .unwrap_or_else(|| panic!("no call event: {err}"));
    for field in ["task=", "key=", "cache=\"miss\"", "ms="] {
        assert!(done.contains(field), "{field} in {done}");
    }
    assert!(!err.contains('\u{1b}'), "no colour codes when piped: {err}");
}

/// A small deterministic generator (the test needs no crate for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn fuzzed_bad_command_lines_never_panic_and_fail_in_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let hello = example("hello").display().to_string();
    let words: Vec<&str> = vec![
        "run",
        "cache",
        "verify",
        "ls",
        "show",
        "rm",
        "explain",
        "inspect",
        "--json",
        "--invoke",
        "--batch",
        "--jobs",
        "--env",
        "--dir",
        "--timeout",
        "--max-memory",
        "--fuel",
        "--with",
        "--out",
        "--ttl",
        "--remote-wait",
        "--",
        "-",
        "-v",
        "--name",
        "--excited",
        "greet",
        "wave",
        "",
        "嵑",
        "-0",
        "[[[",
        "'",
        "\"",
        "@",
        "@/no/such",
        "{",
        "greet(",
        "greet(1)",
        "none",
        "0",
        "-1",
        "99999999999999999999",
        "1e9",
        "=",
        "--=",
        "--name=",
        "a\nb",
        "--sort",
        "--sample",
        "--format",
        "raw",
        "%s%n",
    ];
    let mut rng = Lcg(16);
    let mut failures = 0;
    for _ in 0..300 {
        let mut args: Vec<OsString> = Vec::new();
        let n = 1 + rng.next(5);
        for i in 0..n {
            if i == 1 && rng.next(2) == 0 {
                args.push(hello.clone().into());
            }
            args.push(words[rng.next(words.len())].into());
        }
        let (code, out, err) = run_args(cache.path(), &args);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!([0, 1, 2].contains(&code), "{args:?}: exit {code}: {err}");
        if code != 0 {
            failures += 1;
            if args.iter().any(|a| a == "--json") && out.trim_start().starts_with('{') {
                let last = out.lines().last().unwrap();
                let v: serde_json::Value = serde_json::from_str(last)
                    .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"));
                assert!(v["error"].is_string(), "{args:?}: {v}");
            } else {
                one_error_line(&args, &err);
            }
        }
    }
    assert!(
        failures > 200,
        "the fuzz mostly makes bad command lines: {failures}"
    );
}

#[test]
fn a_command_runs_like_wasmtime_run_and_is_still_cached() {
    // A `wasi:cli/run` component: its stdout and stderr are the output, its
    // status the exit code, on a miss and on a hit alike; the granted
    // environment is part of the key.
    let cache = tempfile::tempdir().unwrap();
    let greeter = guest("greeter").display().to_string();
    let run = |env: &[(&str, &str)], grants: &[&str]| {
        let mut cmd = cairn(cache.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.arg("run").args(grants).arg(&greeter).output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    for _ in 0..2 {
        let (code, out, err) = run(&[("GREETER_NAME", "Ada")], &["--env", "GREETER_NAME"]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "hello, Ada\n", "greeted Ada\n")
        );
    }
    let (code, out, err) = run(&[("GREETER_FAIL", "1")], &["--env", "GREETER_FAIL"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "hello, world\n");
    assert!(err.ends_with("failing as asked\n"), "{err}");
    let runs = stdout(cairn(cache.path()).args(["runs", "--json"]));
    let hits: Vec<u64> = runs
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["calls"][0]["cache"]
                .as_str()
                .map_or(9, |c| u64::from(c == "hit"))
        })
        .collect();
    assert_eq!(
        hits.iter().filter(|h| **h == 1).count(),
        1,
        "the second run hit: {runs}"
    );
}

#[test]
fn an_option_after_the_component_that_is_also_a_parameter_is_ambiguous() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("echo.wasm");
    std::fs::write(
        &wasm,
        crate::support::component(
            "package test:e; world e { export echo: func(timeout: u32) -> u32; }",
            r#"(module (func (export "echo") (param i32) (result i32) (local.get 0)))"#,
        ),
    )
    .unwrap();
    let wasm = wasm.display().to_string();
    // (A value cairn cannot take, like `5`, is refused by the argument
    // parser first; `5s` reaches the check.)
    let args = os(&["run", &wasm, "echo", "--timeout", "5s"]);
    let (code, _, err) = run_args(cache.path(), &args);
    assert_eq!(code, 2);
    one_error_line(&args, &err);
    assert!(
        err.contains("`--timeout` after the component is both"),
        "{err}"
    );
    // After `--` it is the task's; before the component, cairn's.
    let out = stdout(cairn(cache.path()).args(["run", &wasm, "echo", "--", "--timeout", "5"]));
    assert_eq!(out.trim(), "5");
    let out = stdout(cairn(cache.path()).args([
        "run",
        "--timeout",
        "1m",
        &wasm,
        "echo",
        "--",
        "--timeout",
        "6",
    ]));
    assert_eq!(out.trim(), "6");
}
