//! The `cairn` library on tiny components made from WAT.

use cairn_host::{CacheMode, CacheStatus, CallOptions, ErrorKind, Host, Value};

use crate::support::component;

const MATH_WIT: &str = r#"
package test:math;
world math {
  export add: func(a: u32, b: u32) -> u32;
  export boom: func(x: u32) -> u32;
}
"#;

const MATH_WAT: &str = r#"
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "boom") (param i32) (result i32) unreachable))
"#;

const ENV_WIT: &str = r#"
package test:env;
world env {
  import wasi:clocks/wall-clock@0.2.0;
  import wasi:random/random@0.2.0;
  export seconds: func() -> u64;
  export random: func(salt: u32) -> u64;
}
package wasi:clocks@0.2.0 {
  interface wall-clock {
    record datetime { seconds: u64, nanoseconds: u32 }
    now: func() -> datetime;
  }
}
package wasi:random@0.2.0 {
  interface random {
    get-random-u64: func() -> u64;
  }
}
"#;

const ENV_WAT: &str = r#"
(module
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $now (param i32)))
  (import "wasi:random/random@0.2.0" "get-random-u64" (func $rand (result i64)))
  (memory (export "memory") 1)
  (func (export "seconds") (result i64) (call $now (i32.const 16)) (i64.load (i32.const 16)))
  (func (export "random") (param i32) (result i64) (call $rand)))
"#;

fn off() -> CallOptions {
    let mut o = CallOptions::default();
    o.cache = CacheMode::Off;
    o
}

#[test]
fn exports_are_listed_with_wit_signatures() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    let sigs: Vec<String> = task
        .exports()
        .iter()
        .map(|e| format!("{}: {}", e.path(), e.ty.as_ref().unwrap()))
        .collect();
    assert_eq!(
        sigs,
        [
            "add: func(a: u32, b: u32) -> u32",
            "boom: func(x: u32) -> u32"
        ]
    );
}

#[test]
fn a_trap_is_an_error_never_cached_and_the_host_goes_on() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    for _ in 0..2 {
        let err = host.call(&task, "boom", &[Value::U32(1)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskFailed);
        assert!(err.to_string().contains("unreachable"), "{err}");
        assert!(err.to_string().contains("nothing was cached"), "{err}");
    }
    let sum = host
        .call(&task, "add", &[Value::U32(2), Value::U32(3)])
        .unwrap();
    assert_eq!(sum.value, Some(Value::U32(5)));
    assert_eq!(sum.report.cache, CacheStatus::Miss);
}

#[test]
fn wrong_arguments_are_rejected_before_running() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    let err = host.call(&task, "add", &[Value::U32(2)]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    let err = host
        .call(&task, "add", &[Value::U32(2), Value::String("3".into())])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    assert!(err.to_string().contains("argument `b`"), "{err}");
    let err = host.call(&task, "sub", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownExport);
}

#[test]
fn a_hit_needs_neither_the_component_bytes_nor_an_engine() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("math.wasm");
    std::fs::write(&path, component(MATH_WIT, MATH_WAT)).unwrap();
    let args = [Value::U32(20), Value::U32(22)];
    let key = {
        let host = Host::open(cache.path()).unwrap();
        let task = host.load(&path).unwrap();
        let out = host.call(&task, "add", &args).unwrap();
        assert_eq!(out.report.key, host.key(&task, "add", &args).unwrap());
        out.report.key
    };
    // A new host (a new process, in effect) loads the task from the cache's
    // memory of it; then the component disappears.
    let host = Host::open(cache.path()).unwrap();
    let task = host.load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let hit = host.call(&task, "add", &args).unwrap();
    assert_eq!(hit.value, Some(Value::U32(42)));
    assert_eq!(
        (hit.report.cache, hit.report.executed, hit.report.key),
        (CacheStatus::Hit, 0, key)
    );
    // A miss runs from the compiled code kept in the cache, still without the file.
    let miss = host
        .call(&task, "add", &[Value::U32(1), Value::U32(1)])
        .unwrap();
    assert_eq!((miss.value, miss.report.executed), (Some(Value::U32(2)), 1));
}

#[test]
fn clocks_are_fixed_and_random_is_seeded_by_the_call() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host.load_bytes("env", component(ENV_WIT, ENV_WAT)).unwrap();
    let now = host.call_with(&task, "seconds", &[], &off()).unwrap();
    assert_eq!(
        now.value,
        Some(Value::U64(cairn_host::sandbox::FIXED_WALL_CLOCK_SECS))
    );
    let draw = |salt| {
        host.call_with(&task, "random", &[Value::U32(salt)], &off())
            .unwrap()
            .value
    };
    assert_eq!(draw(1), draw(1), "the same call sees the same random bytes");
    assert_ne!(draw(1), draw(2), "another call sees other bytes");
}

#[test]
fn refresh_replaces_and_off_leaves_no_trace() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    let args = [Value::U32(1), Value::U32(2)];
    let first = host.call_with(&task, "add", &args, &off()).unwrap();
    assert!(!first.report.stored);
    assert_eq!(
        host.call(&task, "add", &args).unwrap().report.cache,
        CacheStatus::Miss
    );
    let mut refresh = CallOptions::default();
    refresh.cache = CacheMode::Refresh;
    assert_eq!(
        host.call_with(&task, "add", &args, &refresh)
            .unwrap()
            .report
            .executed,
        1
    );
    assert_eq!(
        host.call(&task, "add", &args).unwrap().report.cache,
        CacheStatus::Hit
    );
}

#[test]
fn compiled_code_is_kept_and_a_tampered_artefact_is_never_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let bytes = component(MATH_WIT, MATH_WAT);
    {
        let host = Host::open(cache.path()).unwrap();
        let task = host.load_bytes("math", bytes.clone()).unwrap();
        host.call(&task, "add", &[Value::U32(1), Value::U32(1)])
            .unwrap();
    }
    let artefacts: Vec<_> = std::fs::read_dir(cache.path().join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        artefacts.len(),
        1,
        "one compiled component kept for the next process"
    );
    // Garble the machine code: the next process must notice and compile afresh.
    let mut code = std::fs::read(&artefacts[0]).unwrap();
    let mid = code.len() / 2;
    code[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(&artefacts[0], code).unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host.load_bytes("math", bytes).unwrap();
    let out = host
        .call(&task, "add", &[Value::U32(2), Value::U32(2)])
        .unwrap();
    assert_eq!(out.value, Some(Value::U32(4)));
}

#[test]
fn identical_concurrent_calls_execute_once() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("t.txt");
    std::fs::write(
        &text,
        "a few words to count, again and again\n".repeat(200_000),
    )
    .unwrap();
    let host = std::sync::Arc::new(Host::open(cache.path()).unwrap());
    let task = host.load(crate::support::example("words")).unwrap();
    let blob = host.blob_from_file(&text).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (host, task, blob) = (host.clone(), task.clone(), blob.clone());
            std::thread::spawn(move || host.call(&task, "total", &[Value::Blob(blob)]).unwrap())
        })
        .collect();
    let outs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let misses = outs
        .iter()
        .filter(|o| o.report.cache == CacheStatus::Miss)
        .count();
    assert_eq!(misses, 1, "one execution; the others waited for its result");
    assert!(outs.iter().all(|o| o.value == Some(Value::U64(1_600_000))));
}

/// Appends to a file when the call it watches starts: after the file was
/// hashed and stamped (when its blob was made), before the task reads it.
struct AppendOnStart {
    path: std::path::PathBuf,
    done: std::sync::atomic::AtomicBool,
}

impl cairn_host::Observer for AppendOnStart {
    fn call_started(&self, _component: &str, _export: &str, _depth: u32) {
        if !self.done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .unwrap();
            std::io::Write::write_all(&mut f, b"late words\n").unwrap();
        }
    }
}

#[test]
fn an_input_changed_during_the_run_is_not_cached() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("t.txt");
    std::fs::write(&text, "word ".repeat(1_000)).unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host.load(crate::support::example("words")).unwrap();
    let blob = host.blob_from_file(&text).unwrap();
    // The file changes once the call has started, on every machine: no
    // writer thread racing the task.
    let mut opts = CallOptions::default();
    opts.observer = Some(std::sync::Arc::new(AppendOnStart {
        path: text.clone(),
        done: false.into(),
    }));
    let err = host
        .call_with(&task, "total", &[Value::Blob(blob.clone())], &opts)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(
        err.to_string().contains("changed while the task ran"),
        "{err}"
    );
    // Nothing was stored under the old content's key: asking again is no hit.
    assert!(host.call(&task, "total", &[Value::Blob(blob)]).is_err());
    let fresh = host.blob_from_file(&text).unwrap();
    let out = host.call(&task, "total", &[Value::Blob(fresh)]).unwrap();
    assert_eq!(
        (out.report.cache, out.value),
        (CacheStatus::Miss, Some(Value::U64(1_002)))
    );
}

/// Sixteen calls at once on one host from a tokio application (four of them
/// twice): no panic, no runtime of cairn's own, and the answers of the
/// blocking API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_from_tokio_answer_like_blocking_ones() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Host::open(a.path()).unwrap();
    let task = host
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    let args = |i: u32| [Value::U32(i % 12), Value::U32(1000)];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (host, task) = (host.clone(), task.clone());
        set.spawn(async move {
            let out = host
                .call_async(&task, "add", &args(i), &CallOptions::default())
                .await;
            (i, out)
        });
    }
    let mut got = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, out) = joined.unwrap();
        got.push((i, out.unwrap().value));
    }
    got.sort_by_key(|(i, _)| *i);

    let blocking = Host::open(b.path()).unwrap();
    let same = blocking
        .load_bytes("math", component(MATH_WIT, MATH_WAT))
        .unwrap();
    for (i, value) in got {
        let want = blocking.call(&same, "add", &args(i)).unwrap().value;
        assert_eq!(value, want, "call {i}");
    }
    // What the async calls stored answers the next one.
    let again = host
        .call_async(&task, "add", &args(3), &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(again.report.cache, CacheStatus::Hit);
}
