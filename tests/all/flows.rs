//! Flows on tiny WAT components: a `sum3` flow whose additions are calls
//! into a `leaf` task that exports `test:flow/ops`.

use cairn_host::{CacheStatus, ErrorKind, Host, Task, Value};

use crate::support::{component_of, with_custom_section};

const WIT: &str = r#"
package test:flow;
interface ops {
  add: func(a: u32, b: u32) -> u32;
  boom: func(a: u32) -> u32;
}
world leaf { export ops; }
world flow {
  import ops;
  export sum3: func(a: u32, b: u32, c: u32) -> u32;
  export explode: func(a: u32) -> u32;
}
world ouroboros { import ops; export ops; }
"#;

const LEAF: &str = r#"
(module
  (func (export "test:flow/ops#add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "test:flow/ops#boom") (param i32) (result i32) unreachable))
"#;

const FLOW: &str = r#"
(module
  (import "test:flow/ops" "add" (func $add (param i32 i32) (result i32)))
  (import "test:flow/ops" "boom" (func $boom (param i32) (result i32)))
  (func (export "sum3") (param i32 i32 i32) (result i32)
    (call $add (call $add (local.get 0) (local.get 1)) (local.get 2)))
  (func (export "explode") (param i32) (result i32) (call $boom (local.get 0))))
"#;

const OUROBOROS: &str = r#"
(module
  (import "test:flow/ops" "add" (func $add (param i32 i32) (result i32)))
  (import "test:flow/ops" "boom" (func $boom (param i32) (result i32)))
  (func (export "test:flow/ops#add") (param i32 i32) (result i32) (call $add (local.get 0) (local.get 1)))
  (func (export "test:flow/ops#boom") (param i32) (result i32) (call $boom (local.get 0))))
"#;

fn leaf(host: &Host) -> Task {
    host.load_bytes("leaf", component_of(WIT, Some("leaf"), LEAF))
        .unwrap()
}

/// The `sum3` flow, unbound.
fn raw_flow(host: &Host) -> Task {
    host.load_bytes("flow", component_of(WIT, Some("flow"), FLOW))
        .unwrap()
}

fn flow(host: &Host, leaf: &Task) -> Task {
    let flow = raw_flow(host);
    host.bind(&flow, std::slice::from_ref(leaf), &[]).unwrap()
}

fn try_sum3(
    host: &Host,
    flow: &Task,
    a: u32,
    b: u32,
    c: u32,
) -> cairn_host::Result<cairn_host::Outcome> {
    host.call(flow, "sum3", &[Value::U32(a), Value::U32(b), Value::U32(c)])
}

fn sum3(host: &Host, flow: &Task, a: u32, b: u32, c: u32) -> cairn_host::Outcome {
    try_sum3(host, flow, a, b, c).unwrap()
}

fn shape(out: &cairn_host::Outcome) -> Vec<(String, &'static str)> {
    out.report
        .calls
        .iter()
        .map(|c| (format!("{}:{}", c.component, c.export), c.cache.as_str()))
        .collect()
}

#[test]
fn every_call_of_a_flow_goes_through_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let flow = flow(&host, &leaf(&host));
    let cold = sum3(&host, &flow, 1, 2, 3);
    assert_eq!(cold.value, Some(Value::U32(6)));
    assert_eq!(
        shape(&cold),
        [
            ("flow:sum3".into(), "miss"),
            ("leaf:test:flow/ops#add".into(), "miss"),
            ("leaf:test:flow/ops#add".into(), "miss")
        ]
    );
    assert_eq!((cold.report.executed, cold.report.hits), (3, 0));
    // New third argument: the flow re-runs, its first addition hits.
    let partial = sum3(&host, &flow, 1, 2, 4);
    assert_eq!(partial.value, Some(Value::U32(7)));
    assert_eq!(shape(&partial)[1], ("leaf:test:flow/ops#add".into(), "hit"));
    assert_eq!((partial.report.executed, partial.report.hits), (2, 1));
    // The same arguments: the whole flow is one hit; nothing below it runs.
    let warm = sum3(&host, &flow, 1, 2, 3);
    assert_eq!(warm.report.cache, CacheStatus::Hit);
    assert_eq!((warm.report.executed, warm.report.calls.len()), (0, 1));
}

#[test]
fn a_changed_leaf_misses_exactly_above_it() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let leaf1 = leaf(&host);
    let flow1 = flow(&host, &leaf1);
    sum3(&host, &flow1, 1, 2, 3);
    let leaf2 = host
        .load_bytes(
            "leaf",
            with_custom_section(&component_of(WIT, Some("leaf"), LEAF), b"v2"),
        )
        .unwrap();
    let flow2 = flow(&host, &leaf2);
    assert_ne!(flow1.closure(), flow2.closure());
    assert_eq!(
        flow1.hash(),
        flow2.hash(),
        "the flow's own bytes did not change"
    );
    let out = sum3(&host, &flow2, 1, 2, 3);
    assert_eq!(out.report.cache, CacheStatus::Miss);
    assert_eq!(
        out.report.executed, 3,
        "every call whose closure holds the leaf misses"
    );
    // A call that does not reach the change still hits.
    let direct = host
        .call(&leaf1, "add", &[Value::U32(1), Value::U32(2)])
        .unwrap();
    assert_eq!(direct.report.cache, CacheStatus::Hit);
}

#[test]
fn an_import_nobody_provides_is_named_at_bind_time() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let flow = raw_flow(&host);
    let err = host.bind(&flow, &[], &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidComponent);
    assert!(err.to_string().contains("`test:flow/ops`"), "{err}");
    // Unbound, a call says the same instead of failing to link.
    let err = try_sum3(&host, &flow, 1, 2, 3).unwrap_err();
    assert!(err.to_string().contains("`test:flow/ops`"), "{err}");
}

#[test]
fn a_flow_that_provides_its_own_import_is_a_cycle() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let snake = host
        .load_bytes("ouroboros", component_of(WIT, Some("ouroboros"), OUROBOROS))
        .unwrap();
    let err = host
        .bind(&snake, std::slice::from_ref(&snake), &[])
        .unwrap_err();
    assert!(
        err.to_string().contains("cycle: ouroboros → ouroboros"),
        "{err}"
    );
    let other = leaf(&host);
    let err = host.bind(&snake, &[snake.clone(), other], &[]).unwrap_err();
    assert!(err.to_string().contains("choose one"), "{err}");
}

#[test]
fn a_trap_below_a_flow_names_the_task_and_caches_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let flow = flow(&host, &leaf(&host));
    for _ in 0..2 {
        let err = host.call(&flow, "explode", &[Value::U32(1)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TaskFailed);
        assert!(
            err.to_string()
                .starts_with("leaf trapped in `test:flow/ops#boom`"),
            "{err}"
        );
    }
    assert_eq!(sum3(&host, &flow, 1, 1, 1).value, Some(Value::U32(3)));
}

#[test]
fn results_of_a_task_that_does_not_persist_stay_in_memory() {
    let cache = tempfile::tempdir().unwrap();
    {
        let host = Host::open(cache.path()).unwrap();
        let leaf = leaf(&host).with_persist(false);
        let flow = flow(&host, &leaf);
        sum3(&host, &flow, 1, 2, 3);
        // Within the run, the leaf's results are remembered.
        let again = host
            .call(&leaf, "add", &[Value::U32(1), Value::U32(2)])
            .unwrap();
        assert_eq!(again.report.cache, CacheStatus::Hit);
    }
    let host = Host::open(cache.path()).unwrap();
    let leaf = leaf(&host).with_persist(false);
    let flow = flow(&host, &leaf);
    assert_eq!(
        sum3(&host, &flow, 1, 2, 3).report.cache,
        CacheStatus::Hit,
        "the flow's result persists"
    );
    let add = host
        .call(&leaf, "add", &[Value::U32(1), Value::U32(2)])
        .unwrap();
    assert_eq!(
        add.report.cache,
        CacheStatus::Miss,
        "the leaf's result was not stored"
    );
}

#[test]
fn choose_picks_among_tasks_exporting_the_same_interface() {
    let cache = tempfile::tempdir().unwrap();
    let host = Host::open(cache.path()).unwrap();
    let a = leaf(&host).named("a");
    let b = host
        .load_bytes(
            "b",
            with_custom_section(&component_of(WIT, Some("leaf"), LEAF), b"b"),
        )
        .unwrap();
    let raw = raw_flow(&host);
    let pool = [a.clone(), b.clone()];
    let err = host.bind(&raw, &pool, &[]).unwrap_err();
    assert!(err.to_string().contains("exported by a and b"), "{err}");
    let choose = [("test:flow/ops".to_string(), "b".to_string())];
    let chosen = host.bind(&raw, &pool, &choose).unwrap();
    assert_eq!(chosen.closure(), flow(&host, &b).closure());
    assert_ne!(chosen.closure(), flow(&host, &a).closure());
    assert_eq!(sum3(&host, &chosen, 1, 1, 1).report.calls[1].component, "b");
}

#[test]
fn flow_nesting_is_bounded() {
    let cache = tempfile::tempdir().unwrap();
    let mut limits = cairn_host::Limits::default();
    limits.max_depth = 1;
    let host = Host::open_with(cache.path(), limits).unwrap();
    let flow = flow(&host, &leaf(&host));
    let err = try_sum3(&host, &flow, 1, 2, 3).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TaskFailed);
    assert!(err.to_string().contains("nest deeper than 1"), "{err}");
    // The leaf alone is within the bound.
    let leaf = leaf(&host);
    assert_eq!(
        host.call(&leaf, "add", &[Value::U32(1), Value::U32(2)])
            .unwrap()
            .value,
        Some(Value::U32(3))
    );
}
