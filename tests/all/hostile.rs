//! The hostile-guest suite: a real component tries everything the sandbox
//! must stop. Each attempt ends in the expected, named outcome; nothing is
//! cached; the next normal call in the same host works.

use std::time::Duration;

use cairn_host::{CacheStatus, ErrorKind, Host, Limits, Task, Value};

use crate::support::{component, guest};

/// A host with every limit set, for the hostile guest. Its time limit only
/// stops a hang: a test that stops at another limit, or a normal call, must
/// not lose a race against it on a slow or loaded machine. The time limit
/// itself is tested with [`host_timed`].
fn host(cache: &std::path::Path) -> (Host, Task) {
    host_timed(cache, Duration::from_secs(120))
}

/// [`host`] with a time limit of `timeout`.
fn host_timed(cache: &std::path::Path, timeout: Duration) -> (Host, Task) {
    let mut limits = Limits::default();
    limits.timeout = Some(timeout);
    limits.max_memory = 64 << 20;
    limits.max_output = 64 << 10;
    limits.max_handles = 100;
    let host = Host::open_with(cache, limits).unwrap();
    let task = host.load(guest("hostile")).unwrap();
    (host, task)
}

/// `export(args)` fails as a task failure whose message contains `expect`;
/// it is not cached, and the host still runs a normal call.
fn stopped(host: &Host, task: &Task, export: &str, args: &[Value], expect: &str) {
    for attempt in 0..2 {
        let err = host.call(task, export, args).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskFailed, "{err}");
        assert!(
            err.to_string().contains(expect),
            "attempt {attempt}: expected `{expect}` in: {err}"
        );
        assert!(err.to_string().contains("nothing was cached"), "{err}");
    }
    let fine = host.call(task, "ok", &[]).unwrap();
    assert_eq!(fine.value, Some(Value::String("fine".into())));
}

/// `export(args)` returns, and its answer says the capability was denied.
fn denied(host: &Host, task: &Task, export: &str, args: &[Value]) -> Value {
    host.call(task, export, args).unwrap().value.unwrap()
}

fn is_err(v: &Value) -> bool {
    matches!(v, Value::Result(Err(_)))
}

#[test]
fn host_files_are_not_there() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let secret = cache.path().join("secret.txt");
    std::fs::write(&secret, "do not read").unwrap();
    for path in [
        secret.display().to_string(),
        "/etc/passwd".into(),
        "../../../etc/passwd".into(),
    ] {
        let v = denied(&host, &task, "read-file", &[Value::String(path.clone())]);
        assert!(is_err(&v), "{path}: {}", v.to_wave());
    }
}

#[test]
fn the_environment_is_empty() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    std::env::set_var("CAIRN_TEST_SECRET", "x");
    assert_eq!(denied(&host, &task, "env-count", &[]), Value::U32(0));
}

#[test]
fn the_network_is_closed() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let v = denied(&host, &task, "connect", &[Value::String(addr)]);
    assert!(is_err(&v), "{}", v.to_wave());
}

#[test]
fn an_endless_loop_hits_the_time_limit() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host_timed(cache.path(), Duration::from_millis(300));
    stopped(&host, &task, "spin", &[], "hit its time limit of 300ms");
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "hog",
        &[Value::U64(1 << 20)],
        "hit its memory limit of 64 MiB",
    );
}

#[test]
fn runaway_recursion_in_rust_is_named_a_stack_overflow() {
    // Rust keeps its stack at the bottom of linear memory: running off its
    // end wraps below address 0, an out-of-bounds access the engine reports
    // with its address, which names it a stack overflow and the size to raise.
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "recurse",
        &[Value::U64(u64::MAX)],
        "overflowed its stack in `recurse`",
    );
    let err = host
        .call(&task, "recurse", &[Value::U64(u64::MAX)])
        .unwrap_err();
    assert!(err.to_string().contains("stack-size"), "{err}");
}

#[test]
fn the_default_limits_have_a_deadline() {
    // A runaway guest stops without anyone asking: the default is a time
    // limit (its value is a policy, tested here; the stop itself is tested
    // with a short one below and through the CLI).
    assert_eq!(Limits::default().timeout, Some(cairn_host::DEFAULT_TIMEOUT));
    assert!(cairn_host::DEFAULT_TIMEOUT >= Duration::from_secs(60));
}

#[test]
fn a_writer_that_ignores_errors_is_stopped_when_it_crosses_the_output_cap() {
    // 100 GiB asked for, every failed write ignored: only a trap at the cap
    // stops it (this test would not end otherwise).
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "flood",
        &[Value::U64(100)],
        "output limit of 64 KiB to stdout",
    );
}

#[test]
fn runaway_recursion_overflows_the_engine_stack() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let task = host
        .load_bytes(
            "recursive",
            component(
                "package test:r; world r { export down: func(n: u32) -> u32; export ok: func() -> string; }",
                r#"(module
                     (memory (export "memory") 1)
                     (func $down (export "down") (param i32) (result i32)
                       (i32.add (call $down (local.get 0)) (i32.const 1)))
                     (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
                     (data (i32.const 16) "fine")
                     (func (export "ok") (result i32)
                       (i32.store (i32.const 0) (i32.const 16))
                       (i32.store (i32.const 4) (i32.const 4))
                       (i32.const 0)))"#,
            ),
        )
        .unwrap();
    stopped(
        &host,
        &task,
        "down",
        &[Value::U32(1)],
        "overflowed its stack",
    );
}

#[test]
fn gigabytes_to_stdout_hit_the_output_limit() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "shout",
        &[Value::U64(2048)],
        "output limit of 64 KiB to stdout",
    );
}

#[test]
fn unbounded_handles_hit_the_handle_limit() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "hoard",
        &[Value::U32(1_000_000)],
        "more than 100 blob handles",
    );
    // Within the limit is fine.
    assert_eq!(
        host.call(&task, "hoard", &[Value::U32(50)]).unwrap().value,
        Some(Value::U32(50))
    );
}

#[test]
fn a_panic_is_reported_with_the_tasks_own_message() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    stopped(
        &host,
        &task,
        "panic",
        &[Value::String("the data is bad".into())],
        "the data is bad",
    );
}

#[test]
fn fuel_stops_a_loop_when_metered() {
    let cache = tempfile::tempdir().unwrap();
    let mut limits = Limits::default();
    limits.fuel = Some(10_000_000);
    let host = Host::open_with(cache.path(), limits).unwrap();
    let task = host.load(guest("hostile")).unwrap();
    stopped(&host, &task, "spin", &[], "ran out of fuel (10000000)");
}

#[test]
fn a_denied_capability_is_an_answer_and_cached_like_one() {
    // A returned `err` is deterministic: it is cached like any value.
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let args = [Value::String("/etc/passwd".into())];
    host.call(&task, "read-file", &args).unwrap();
    assert_eq!(
        host.call(&task, "read-file", &args).unwrap().report.cache,
        CacheStatus::Hit
    );
}

/// Calls `export` with a directory granted read-only at `/data`.
fn with_dir(
    host: &Host,
    task: &Task,
    dir: &std::path::Path,
    writable: bool,
    export: &str,
    args: &[Value],
) -> cairn_host::Outcome {
    let mut opts = cairn_host::CallOptions::default();
    opts.grants.dirs.push(cairn_host::DirGrant {
        host: dir.to_path_buf(),
        guest: "/data".into(),
        writable,
    });
    host.call_with(task, export, args, &opts).unwrap()
}

#[test]
fn a_granted_directory_is_readable_inescapable_and_keyed_by_content() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside").unwrap();
    std::fs::write(data.join("in.txt"), "inside").unwrap();
    std::os::unix::fs::symlink("../secret.txt", data.join("link")).unwrap();
    let read = |path: &str| {
        with_dir(
            &host,
            &task,
            &data,
            false,
            "read-file",
            &[Value::String(path.into())],
        )
    };

    let inside = read("/data/in.txt");
    assert_eq!(inside.value.unwrap().to_wave(), "ok(\"inside\")");
    assert_eq!(inside.report.cache, CacheStatus::Miss);
    for escape in ["/data/../secret.txt", "/data/link"] {
        let v = read(escape).value.unwrap();
        assert!(is_err(&v), "{escape} escaped: {}", v.to_wave());
    }
    assert_eq!(
        read("/data/in.txt").report.cache,
        CacheStatus::Hit,
        "an unchanged tree hits"
    );
    // A new name in the tree changes its hash: no waiting for mtimes.
    std::fs::write(data.join("other.txt"), "new file").unwrap();
    let changed = read("/data/in.txt");
    assert_eq!(
        changed.report.cache,
        CacheStatus::Miss,
        "the tree's content is in the key"
    );
    assert_ne!(changed.report.key, inside.report.key);
}

#[test]
fn a_writable_directory_makes_the_call_uncacheable() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let data = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = with_dir(&host, &task, data.path(), true, "ok", &[]);
        assert_eq!(out.report.cache, CacheStatus::Uncacheable);
        assert_eq!(out.report.executed, 1);
        assert!(!out.report.stored);
    }
}

#[test]
fn granted_environment_variables_are_seen_and_keyed() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let mut opts = cairn_host::CallOptions::default();
    opts.grants.env.push(("MODE".into(), "fast".into()));
    let granted = host.call_with(&task, "env-count", &[], &opts).unwrap();
    assert_eq!(granted.value, Some(Value::U32(1)));
    let plain = host.call(&task, "env-count", &[]).unwrap();
    assert_eq!(plain.value, Some(Value::U32(0)));
    assert_ne!(granted.report.key, plain.report.key);
}

#[test]
fn an_impure_task_always_runs() {
    let cache = tempfile::tempdir().unwrap();
    let (host, task) = host(cache.path());
    let mut opts = cairn_host::CallOptions::default();
    opts.grants.impure = true;
    for _ in 0..2 {
        let out = host.call_with(&task, "ok", &[], &opts).unwrap();
        assert_eq!(
            (out.report.cache, out.report.executed),
            (CacheStatus::Uncacheable, 1)
        );
    }
    assert_eq!(
        host.call(&task, "ok", &[]).unwrap().report.cache,
        CacheStatus::Miss,
        "pure calls are keyed apart"
    );
}
