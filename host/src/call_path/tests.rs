//! The call path without wasm or a server: a scripted tier answers lookups
//! and a counting executor stands in for the engine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use super::CallPath;
use crate::clock::ManualClock;
use crate::component::{ComponentInfo, Export, INFO_VERSION};
use crate::digest::Digest;
use crate::engine::{Call, Execute, Execution};
use crate::error::{Error, ErrorKind, Result};
use crate::report::{CacheMode, CacheStatus, CallOptions};
use crate::sandbox::Limits;
use crate::store::Store;
use crate::task::Task;
use crate::tier::memory::MemoryTier;
use crate::tier::scripted::{Answer, ScriptedTier};
use crate::tier::Tier;
use crate::types::{FuncType, Type};
use crate::value::Value;

/// Adds its two arguments, counting executions; fails on `0 + 0`; holds
/// each execution until released when built with [`Adder::held`].
#[derive(Default)]
struct Adder {
    runs: AtomicUsize,
    hold: Option<Mutex<mpsc::Receiver<()>>>,
    started: Option<Mutex<mpsc::Sender<()>>>,
}

impl Adder {
    /// An adder whose executions say they started, then wait for a release.
    fn held() -> (Arc<Adder>, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let adder = Adder {
            hold: Some(Mutex::new(release_rx)),
            started: Some(Mutex::new(started_tx)),
            ..Adder::default()
        };
        (Arc::new(adder), started_rx, release_tx)
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Execute for Adder {
    fn execute(&self, call: Call<'_>) -> Result<Execution> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if let Some(s) = &self.started {
            s.lock().unwrap().send(()).unwrap();
        }
        if let Some(h) = &self.hold {
            let _ = h.lock().unwrap().recv();
        }
        let [Value::U32(a), Value::U32(b)] = call.args else {
            panic!("add takes two u32s");
        };
        if a + b == 0 {
            return Err(Error::new(ErrorKind::TaskFailed, "add trapped on 0 + 0"));
        }
        Ok(Execution {
            value: Some(Value::U32(a + b)),
            run: std::time::Duration::from_millis(1),
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    }
}

/// A task exporting `add: func(a: u32, b: u32) -> u32`, with no bytes: the
/// call path never needs them when the executor is not the engine.
fn adder_task() -> Task {
    let info = ComponentInfo {
        version: INFO_VERSION,
        exports: vec![Export {
            interface: None,
            func: "add".into(),
            ty: Ok(FuncType {
                params: vec![("a".into(), Type::U32), ("b".into(), Type::U32)],
                result: Some(Type::U32),
            }),
        }],
        imports: Vec::new(),
    };
    Task::new(
        Digest::of(b"adder"),
        "adder".into(),
        None,
        Arc::new(OnceLock::new()),
        info.into(),
    )
}

/// A call path over `tiers` with `executor`, on a fresh store; the store
/// (a temporary directory) lives as long as the returned guard.
fn path_with(
    tiers: Vec<Arc<dyn Tier>>,
    executor: Arc<dyn Execute>,
) -> (Arc<CallPath>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(ManualClock::at_ms(1_000))).unwrap();
    let path = Arc::new(CallPath::with(Arc::new(store), tiers, Limits::default()));
    path.set_executor(executor);
    (path, dir)
}

fn add(path: &Arc<CallPath>, a: u32, b: u32) -> Result<(Option<Value>, CacheStatus)> {
    let (called, _) = path.run(
        &adder_task(),
        "add",
        &[Value::U32(a), Value::U32(b)],
        &CallOptions::default(),
        true,
    );
    called.map(|c| (c.value, c.cache))
}

#[test]
fn a_miss_executes_and_stores_then_the_same_call_hits() {
    let tier = ScriptedTier::new();
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    assert_eq!(
        add(&path, 2, 3).unwrap(),
        (Some(Value::U32(5)), CacheStatus::Miss)
    );
    assert_eq!(adder.runs(), 1);
    let puts = tier.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].1, Some(Value::U32(5)));
    assert!(puts[0].2, "a persisting task's result carries its manifest");
    assert_eq!(
        add(&path, 2, 3).unwrap(),
        (Some(Value::U32(5)), CacheStatus::Hit)
    );
    assert_eq!(adder.runs(), 1, "a hit executes nothing");
}

#[test]
fn a_scripted_hit_answers_without_executing() {
    let tier = ScriptedTier::new();
    tier.then(Answer::Hit(Some(Value::U32(42))));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    assert_eq!(
        add(&path, 1, 1).unwrap(),
        (Some(Value::U32(42)), CacheStatus::Hit)
    );
    assert_eq!(adder.runs(), 0);
    assert!(tier.puts.lock().unwrap().is_empty());
}

#[test]
fn tiers_are_walked_in_order_and_the_first_hit_wins() {
    let first = ScriptedTier::new();
    let second = ScriptedTier::new();
    first.then(Answer::Miss);
    second.then(Answer::Hit(Some(Value::U32(7))));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![first.clone(), second.clone()], adder.clone());
    assert_eq!(add(&path, 3, 4).unwrap().0, Some(Value::U32(7)));
    assert_eq!(first.gets.lock().unwrap().len(), 1);
    assert_eq!(second.gets.lock().unwrap().len(), 1);
    // A hit in the first tier never asks the second.
    first.then(Answer::Hit(Some(Value::U32(8))));
    assert_eq!(add(&path, 3, 4).unwrap().0, Some(Value::U32(8)));
    assert_eq!(second.gets.lock().unwrap().len(), 1);
    assert_eq!(adder.runs(), 0);
}

#[test]
fn a_failing_tier_fails_the_call_and_nothing_runs() {
    let tier = ScriptedTier::new();
    tier.then(Answer::Fail("the index is damaged"));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    let err = add(&path, 1, 2).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cache);
    assert!(err.to_string().contains("the index is damaged"), "{err}");
    assert_eq!(adder.runs(), 0);
}

#[test]
fn a_hit_whose_blob_no_later_tier_holds_is_a_miss() {
    let tier = ScriptedTier::new();
    let blob = (Digest::of(b"gone"), 4);
    tier.then(Answer::HitWithoutBlob(Some(Value::U32(1)), blob));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    assert_eq!(
        add(&path, 1, 2).unwrap(),
        (Some(Value::U32(3)), CacheStatus::Miss)
    );
    assert_eq!(adder.runs(), 1);
}

#[test]
fn an_expired_entry_executes_and_says_so() {
    let tier = ScriptedTier::new();
    tier.then(Answer::Expired(5));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    assert_eq!(
        add(&path, 1, 2).unwrap(),
        (Some(Value::U32(3)), CacheStatus::Expired)
    );
    assert_eq!(adder.runs(), 1);
}

#[test]
fn a_failed_execution_is_never_stored() {
    let tier = ScriptedTier::new();
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    assert_eq!(add(&path, 0, 0).unwrap_err().kind(), ErrorKind::TaskFailed);
    assert!(tier.puts.lock().unwrap().is_empty());
    // Failures are not cached: the same call executes again.
    assert!(add(&path, 0, 0).is_err());
    assert_eq!(adder.runs(), 2);
}

#[test]
fn a_key_published_by_another_machine_while_claiming_is_a_hit() {
    let tier = ScriptedTier::new();
    tier.then_publish(Some(Value::U32(9)));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    let (called, calls) = path.run(
        &adder_task(),
        "add",
        &[Value::U32(4), Value::U32(5)],
        &CallOptions::default(),
        true,
    );
    assert_eq!(called.unwrap().value, Some(Value::U32(9)));
    assert_eq!(adder.runs(), 0);
    assert_eq!(calls[0].cache, CacheStatus::Hit);
    assert!(calls[0].remote, "the answer came from elsewhere");
    // A worker's call does not claim: its sender holds the claim.
    let claims = *tier.claims_asked.lock().unwrap();
    let (called, _) = path.run(
        &adder_task(),
        "add",
        &[Value::U32(6), Value::U32(6)],
        &CallOptions::default(),
        false,
    );
    assert!(called.is_ok());
    assert_eq!(*tier.claims_asked.lock().unwrap(), claims);
}

#[test]
fn cache_off_neither_reads_nor_writes_the_tiers() {
    let tier = ScriptedTier::new();
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    let opts = CallOptions {
        cache: CacheMode::Off,
        ..CallOptions::default()
    };
    let (called, _) = path.run(
        &adder_task(),
        "add",
        &[Value::U32(1), Value::U32(1)],
        &opts,
        true,
    );
    assert_eq!(called.unwrap().value, Some(Value::U32(2)));
    assert!(tier.gets.lock().unwrap().is_empty());
    assert!(tier.puts.lock().unwrap().is_empty());
}

#[test]
fn a_task_that_does_not_persist_stays_in_memory() {
    let memory = Arc::new(MemoryTier::default());
    let tier = ScriptedTier::new();
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![memory, tier.clone()], adder.clone());
    let task = adder_task().with_persist(false);
    let run = || {
        let (called, _) = path.run(
            &task,
            "add",
            &[Value::U32(2), Value::U32(2)],
            &CallOptions::default(),
            true,
        );
        called.unwrap()
    };
    assert_eq!(run().cache, CacheStatus::Miss);
    let asked = tier.gets.lock().unwrap().len();
    assert_eq!(run().cache, CacheStatus::Hit);
    assert_eq!(adder.runs(), 1);
    let puts = tier.puts.lock().unwrap().clone();
    assert!(puts.iter().all(|(_, _, persists)| !persists));
    // The second call was answered by the memory tier before the scripted one.
    assert_eq!(tier.gets.lock().unwrap().len(), asked);
}

#[test]
fn identical_concurrent_calls_execute_once() {
    let tier = ScriptedTier::new();
    let (adder, started, release) = Adder::held();
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    std::thread::scope(|s| {
        // The first misses, takes the key's flight, looks again and runs.
        let first = s.spawn(|| add(&path, 20, 22));
        started.recv().unwrap();
        assert_eq!(tier.gets.lock().unwrap().len(), 2);
        // The second misses too (nothing is stored yet), then waits for
        // the flight of the key; once the first is done it finds the result.
        let second = s.spawn(|| add(&path, 20, 22));
        while tier.gets.lock().unwrap().len() < 3 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        assert_eq!(
            first.join().unwrap().unwrap(),
            (Some(Value::U32(42)), CacheStatus::Miss)
        );
        assert_eq!(
            second.join().unwrap().unwrap(),
            (Some(Value::U32(42)), CacheStatus::Hit)
        );
    });
    assert_eq!(adder.runs(), 1);
    assert_eq!(tier.puts.lock().unwrap().len(), 1);
    assert_eq!(path.flights.len(), 0, "no gate is left behind");
}

#[test]
fn a_held_lookup_delays_only_its_own_call() {
    // A slow tier answer (held until released) for one key does not block
    // another key's call.
    let tier = ScriptedTier::new();
    let (release, held) = mpsc::channel();
    tier.then(Answer::Held(Mutex::new(held), Box::new(Answer::Miss)));
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![tier.clone()], adder.clone());
    std::thread::scope(|s| {
        let slow = s.spawn(|| add(&path, 1, 1));
        while tier.gets.lock().unwrap().is_empty() {
            std::thread::yield_now();
        }
        assert_eq!(add(&path, 2, 2).unwrap().0, Some(Value::U32(4)));
        release.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap().0, Some(Value::U32(2)));
    });
    assert_eq!(adder.runs(), 2);
}

/// Where dispatched calls would go: nowhere in these tests.
struct NoWorkers;

impl crate::tier::Dispatch for NoWorkers {
    fn dispatch(&self, _: &crate::tier::Sent<'_>) -> Result<Option<String>> {
        panic!("nothing is dispatched without CallOptions::dispatch")
    }
}

#[test]
fn only_the_first_lookup_reaches_the_remote_tier() {
    let local = ScriptedTier::new();
    let remote = ScriptedTier::new();
    let adder = Arc::new(Adder::default());
    let (path, _dir) = path_with(vec![local.clone()], adder.clone());
    assert!(path.connect(remote.clone(), Arc::new(NoWorkers)));
    assert!(
        !path.connect(remote.clone(), Arc::new(NoWorkers)),
        "one remote tier"
    );
    assert_eq!(add(&path, 1, 2).unwrap().1, CacheStatus::Miss);
    // The first lookup walks both; the one after taking the key's flight
    // stays on this machine (a result another call of this process stored
    // meanwhile is local).
    assert_eq!(local.gets.lock().unwrap().len(), 2);
    assert_eq!(remote.gets.lock().unwrap().len(), 1);
    assert_eq!(*remote.claims_asked.lock().unwrap(), 1);
    // The new result is kept in both, local first.
    assert_eq!(local.puts.lock().unwrap().len(), 1);
    assert_eq!(remote.puts.lock().unwrap().len(), 1);

    // A claim answered "published" is looked up again on this machine only
    // (the shared tier copied it here while waiting).
    remote.then_publish(Some(Value::U32(99)));
    local
        .then(Answer::Miss)
        .then(Answer::Miss)
        .then(Answer::Hit(Some(Value::U32(7))));
    remote.then(Answer::Miss);
    let (called, calls) = path.run(
        &adder_task(),
        "add",
        &[Value::U32(3), Value::U32(4)],
        &CallOptions::default(),
        true,
    );
    assert_eq!(called.unwrap().value, Some(Value::U32(7)));
    assert!(calls[0].remote);
    assert_eq!(
        remote.gets.lock().unwrap().len(),
        2,
        "one more: the first lookup"
    );
    assert_eq!(adder.runs(), 1);
}
