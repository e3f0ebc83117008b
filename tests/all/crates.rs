//! Tasks and flows in crates of their own, outside this workspace, as a user
//! writes them: the task depends on `cairn-guest` as `cargo package` makes it
//! (what crates.io would serve) and builds with plain cargo and with
//! cargo-component; the flow gets the task's WIT from `cairn wit`, with no
//! file copied by hand.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use crate::support::{cairn, json, root};

/// A task that upper-cases a text blob, with the `build.rs` the SDK's docs
/// show and the metadata cargo-component needs.
fn write_task(dir: &Path, sdk: &Path) {
    let files = [
        (
            "Cargo.toml",
            manifest(
                "shout",
                sdk,
                r#"[build-dependencies]
cairn-guest = { path = "SDK" }

[package.metadata.component]
package = "example:shout"

[package.metadata.component.target]
path = "wit"
world = "shout"

[package.metadata.component.target.dependencies]
"cairn:task" = { path = "wit/deps/cairn-task" }
"#,
            ),
        ),
        (
            "build.rs",
            "fn main() {\n    cairn_guest::install_wit(\"wit/deps\").expect(\"cannot write wit/deps/cairn-task\");\n}\n".into(),
        ),
        (
            "wit/shout.wit",
            r#"package example:shout@0.1.0;

interface text {
  use cairn:task/blobs@0.1.0.{blob};
  upper: func(text: borrow<blob>) -> string;
}

world shout {
  include cairn:task/task@0.1.0;
  export text;
}
"#
            .into(),
        ),
        (
            "src/lib.rs",
            r#"use cairn_guest::{Blob, BlobExt};

wit_bindgen::generate!({
    path: "wit",
    world: "example:shout/shout",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

struct Shout;

impl exports::example::shout::text::Guest for Shout {
    fn upper(text: &Blob) -> String {
        String::from_utf8_lossy(&text.bytes()).to_uppercase()
    }
}

export!(Shout);
"#
            .into(),
        ),
    ];
    write_files(dir, &files);
}

/// A flow importing the task's interface, calling it twice.
fn write_flow(dir: &Path, sdk: &Path) {
    let files = [
        ("Cargo.toml", manifest("twice", sdk, "")),
        (
            "wit/twice.wit",
            r#"package example:twice@0.1.0;

world twice {
  include cairn:task/task@0.1.0;
  use cairn:task/blobs@0.1.0.{blob};
  import example:shout/text@0.1.0;
  export twice: func(text: borrow<blob>) -> string;
}
"#
            .into(),
        ),
        (
            "src/lib.rs",
            r#"wit_bindgen::generate!({
    path: "wit",
    world: "example:twice/twice",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
    generate_all,
});

struct Twice;

impl Guest for Twice {
    fn twice(text: &Blob) -> String {
        let once = example::shout::text::upper(text);
        format!("{once} {once}")
    }
}

export!(Twice);
"#
            .into(),
        ),
    ];
    write_files(dir, &files);
}

/// The `Cargo.toml` of guest crate `name` (a component: a `cdylib`) using
/// the SDK at `sdk`, with `more` (where `SDK` stands for its path), and a
/// workspace of its own.
fn manifest(name: &str, sdk: &Path, more: &str) -> String {
    let sdk = sdk.display().to_string();
    let text = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
cairn-guest = {{ path = "SDK" }}
wit-bindgen = "=0.60.0"

{more}
[workspace]
"#
    );
    text.replace("SDK", &sdk)
}

fn write_files(dir: &Path, files: &[(&str, String)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// `cairn-guest` as packaged for crates.io, unpacked under `dir`: what a
/// user's crate gets from the registry (its WIT inside, nothing from this
/// repository around it).
fn packaged_sdk(dir: &Path) -> PathBuf {
    let out = Process::new(env!("CARGO"))
        .args([
            "package",
            "-p",
            "cairn-guest",
            "--no-verify",
            "--allow-dirty",
            "--target-dir",
        ])
        .arg(dir.join("package"))
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo package: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let krate = dir.join(format!("package/package/cairn-guest-{version}.crate"));
    let status = Process::new("tar")
        .arg("xzf")
        .arg(&krate)
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "cannot unpack {}", krate.display());
    dir.join(format!("cairn-guest-{version}"))
}

/// Where the crates build: kept between test runs, so only the first run
/// compiles wit-bindgen.
fn target_dir() -> PathBuf {
    root().join("target/own-crates")
}

/// Runs `cargo ARGS` in `dir`, the crate's own directory.
fn cargo(dir: &Path, program: &str, args: &[&str]) {
    let out = Process::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(cache: &Path, component: &Path, with: &[&Path], text: &Path) -> serde_json::Value {
    let mut cmd = cairn(cache);
    cmd.arg("run").arg(component);
    for w in with {
        cmd.arg("--with").arg(w);
    }
    let export = if with.is_empty() { "upper" } else { "twice" };
    json(
        cmd.arg(export)
            .arg("--text")
            .arg(format!("@{}", text.display())),
    )
}

#[test]
fn a_task_crate_outside_the_workspace_builds_both_ways_and_a_flow_imports_it() {
    // The crates sit at the same paths every run, so that their build
    // outputs (in `target_dir()`) are reused rather than added to.
    let work = target_dir().join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (task, flow) = (work.join("shout"), work.join("twice"));
    let sdk = packaged_sdk(&work);
    let dir = tempfile::tempdir().unwrap();
    assert!(
        sdk.join("wit/task.wit").is_file(),
        "the packaged SDK carries its WIT"
    );
    write_task(&task, &sdk);
    write_flow(&flow, &sdk);
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "cairn stacks stones").unwrap();
    let cache = dir.path().join("cache");

    // `cargo build --target wasm32-wasip2`: a component as it is.
    cargo(
        &task,
        env!("CARGO"),
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    let plain = target_dir().join("wasm32-wasip2/release/shout.wasm");
    let out = run(&cache, &plain, &[], &text);
    assert_eq!(out["result"], "\"CAIRN STACKS STONES\"");

    // `cargo component build`: wasm32-wasip1 plus the adapter; the same answer.
    let installed = Process::new("cargo")
        .args(["component", "--version"])
        .output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "cargo-component is missing: `cargo install cargo-component --locked` (.ci/run installs it)"
    );
    cargo(&task, "cargo", &["component", "build", "--release"]);
    let adapted = target_dir().join("wasm32-wasip1/release/shout.wasm");
    let out = run(&cache, &adapted, &[], &text);
    assert_eq!(out["result"], "\"CAIRN STACKS STONES\"");
    assert_eq!(out["cache"], "miss", "other bytes, another task");

    // The flow's WIT deps come from the task's component.
    let mut wit = cairn(&cache);
    wit.current_dir(&flow).arg("wit").arg(&plain);
    let written = json(&mut wit);
    let imports = &written["written"][1]["imports"];
    assert_eq!(imports[0], "example:shout/text@0.1.0", "{written}");
    cargo(
        &flow,
        env!("CARGO"),
        &["build", "--release", "--target", "wasm32-wasip2"],
    );
    let twice = target_dir().join("wasm32-wasip2/release/twice.wasm");
    let first = run(&cache, &twice, &[&plain], &text);
    assert_eq!(
        first["result"],
        "\"CAIRN STACKS STONES CAIRN STACKS STONES\""
    );
    let again = run(&cache, &twice, &[&plain], &text);
    assert_eq!(
        (again["cache"].as_str(), again["executed"].as_u64()),
        (Some("hit"), Some(0))
    );
}
