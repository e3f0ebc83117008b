//! Fixtures: the example components, a `cairn` command on a fresh cache, and
//! components made from WAT.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::OnceLock;

use assert_cmd::Command;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the guest workspace `dir` (relative to the root) for wasm32-wasip2
/// and returns its output directory.
fn build_guests(dir: &str) -> PathBuf {
    let manifest = root().join(dir).join("Cargo.toml");
    let status = Process::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .status()
        .expect("cannot run cargo to build guest components");
    assert!(
        status.success(),
        "building {dir} failed; is the target installed? `rustup target add wasm32-wasip2`"
    );
    root().join(dir).join("target/wasm32-wasip2/release")
}

/// The path of example component `name` (`hello`, `words`, `ml_load`, …),
/// building the examples once per test run.
pub fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_guests("examples"))
        .join(format!("{name}.wasm"))
}

/// The path of test guest `name` (`hostile`), built once per test run.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_guests("tests/guests"))
        .join(format!("{name}.wasm"))
}

/// The Python example in `examples/{dir}` built by its `build.sh` into
/// `examples/target/py/{dir with _ for -}.wasm`, once per test run.
pub fn python_example(dir: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let out = root()
        .join("examples/target/py")
        .join(format!("{}.wasm", dir.replace('-', "_")));
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if !built.iter().any(|d| d == dir) {
        build_python(dir, &out, None);
        built.push(dir.to_string());
    }
    out
}

/// Runs `examples/{dir}/build.sh` (componentize-py) to build `out` from the
/// Python sources in `app` (default: the example's own directory). The
/// script skips the build when `out` was built from the same sources.
pub fn build_python(dir: &str, out: &Path, app: Option<&Path>) {
    let found = Process::new("componentize-py").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "componentize-py is not installed; install it with `pip install componentize-py==0.25.1`"
    );
    let mut cmd = Process::new(root().join("examples").join(dir).join("build.sh"));
    cmd.arg(out).args(app);
    let status = cmd
        .status()
        .expect("cannot run the Python example's build.sh");
    assert!(status.success(), "building the Python example {dir} failed");
}

/// The JavaScript guest SDK (`guest-sdk/js`), its npm tools installed;
/// panics saying how to install them when node or the tools are missing.
pub fn js_sdk() -> PathBuf {
    let sdk = root().join("guest-sdk/js");
    let node = Process::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the JavaScript tests need node (20.19 or later) on the PATH; install it (apt-get install nodejs), as .ci/run does"
    );
    assert!(
        sdk.join("node_modules/@bytecodealliance/componentize-js").is_dir(),
        "the JavaScript tests need componentize-js: run `npm ci --prefix guest-sdk/js`, as .ci/run does"
    );
    sdk
}

/// Builds JavaScript task `source` (world `world` of the WIT in `wit`) into
/// `out` with the SDK's `cairn-js-build`.
pub fn build_js(source: &Path, wit: &Path, world: &str, out: &Path) {
    let status = Process::new("node")
        .arg(js_sdk().join("build.mjs"))
        .arg(source)
        .arg("--wit")
        .arg(wit)
        .args(["--world", world, "-o"])
        .arg(out)
        .status()
        .expect("cannot run node");
    assert!(status.success(), "building {} failed", source.display());
}

/// Where the JavaScript examples' components go: `examples/target/js`.
fn js_target() -> PathBuf {
    root().join("examples/target/js")
}

/// The `js-report` example component, built once per test run by its
/// `build.sh`.
pub fn js_report() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            js_sdk();
            let status = Process::new(root().join("examples/js-report/build.sh"))
                .arg(js_target())
                .status()
                .expect("cannot run examples/js-report/build.sh");
            assert!(status.success(), "examples/js-report/build.sh failed");
            js_target().join("js-report.wasm")
        })
        .clone()
}

/// A task of `js-report`'s world (its functions return empty strings)
/// built as componentize-js builds by default: with its `http` and
/// `fetch-event` features, so importing `wasi:http`. Built once per test run.
pub fn js_report_with_http() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = js_target().join("js-report-with-http.wasm");
            let wit = root().join("examples/js-report/wit");
            let script = "import { componentize } from '@bytecodealliance/componentize-js';\n\
                 import { writeFile } from 'node:fs/promises';\n\
                 const [src, wit, out] = process.argv.slice(1);\n\
                 const { component } = await componentize({ sourcePath: src, witPath: wit, worldName: 'report' });\n\
                 await writeFile(out, component);";
            std::fs::create_dir_all(js_target()).unwrap();
            let source = js_target().join("js-report-with-http.js");
            std::fs::write(
                &source,
                "export const markdown = { table() { return ''; }, head() { return ''; } };\n",
            )
            .unwrap();
            let status = Process::new("node")
                .current_dir(js_sdk())
                .args(["--input-type=module", "-e", script])
                .arg(&source)
                .arg(wit)
                .arg(&out)
                .status()
                .expect("cannot run node");
            assert!(status.success(), "the default componentize-js build failed");
            out
        })
        .clone()
}

/// A `cairn` command using the cache in `cache`.
pub fn cairn(cache: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cairn").unwrap();
    cmd.env_remove("CAIRN_CACHE_DIR")
        .arg("--cache-dir")
        .arg(cache);
    cmd
}

/// Runs `cmd` (which must print one JSON object) and parses its output.
pub fn json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "cairn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Runs `cmd`, expecting it to fail; returns (exit code, stderr).
/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Copies every file under `from` to the same place under `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for file in walk(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
}

/// What a command that must succeed printed on stdout.
pub fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn failure(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Components from WAT: the same helpers as the library's unit tests.
#[allow(dead_code, reason = "the unit tests' own fixtures come with it")]
#[path = "../../host/src/testing.rs"]
mod testing;
pub(crate) use testing::{component, component_of};

/// `bytes` with a custom section appended: the same program, another hash.
pub fn with_custom_section(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let name = b"cairn-test";
    let body_len = 1 + name.len() + payload.len();
    assert!(body_len < 128, "one-byte LEB128 sizes only");
    let mut out = bytes.to_vec();
    out.extend_from_slice(&[0, body_len as u8, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

/// Writes a CSV like `examples/ml-pipeline/make-csv.sh` does (8 features, a
/// learnable 0/1 label), `rows` long, from `seed`.
///
/// The file is new: a run hashing it now may not remember it by `stat` (the
/// racy window). A test that asserts that a later run reads nothing runs
/// with the clock of [`settled_clock`].
pub fn ml_csv(path: &Path, rows: usize, seed: u64) {
    let mut seed = seed;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
    };
    let w = [1.5, -2.0, 0.7, 0.0, 3.1, -0.4, 1.1, -1.8];
    let mut text = String::from("f1,f2,f3,f4,f5,f6,f7,f8,label\n");
    for _ in 0..rows {
        let x: Vec<f64> = (0..8).map(|_| next()).collect();
        let z: f64 = 0.3 + x.iter().zip(w).map(|(x, w)| x * w).sum::<f64>();
        for v in &x {
            text.push_str(&format!("{v:.4},"));
        }
        text.push_str(if z > 0.0 { "1\n" } else { "0\n" });
    }
    std::fs::write(path, text).unwrap();
}

/// A `CAIRN_NOW_MS` value (ms since the epoch) a second after the newest of
/// `files` was modified: by that clock every one of them is past the racy
/// window, so the cache remembers them by `stat` however fast or slow the
/// machine is, instead of the test sleeping until they are.
pub fn settled_clock(files: &[&Path]) -> String {
    let newest = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
        .max()
        .expect("at least one file");
    let ms = newest
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    (ms + 1_000).to_string()
}
