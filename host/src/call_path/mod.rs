//! The call path: the one path every call takes, top-level or made by a
//! flow.
//!
//! ```text
//! key ──▶ look up in the tiers ──hit──▶ answer (nothing compiles, runs or reads)
//!  │            │ miss
//!  │            ▼
//!  │      single flight (one execution per key in this process)
//!  │            ▼
//!  │      claim in the tiers (one machine per key) ──published meanwhile──▶ answer
//!  │            ▼
//!  │      run: on a worker (dispatch) or in the engine
//!  │            ▼
//!  └───▶  store in every tier; record the call in the run's trace
//! ```
//!
//! A flow's imports are bound by the engine to [`Imports::call`] on the
//! flow's [`Scope`], which calls back into this path for each child: every
//! cross-component call is keyed, looked up and stored like a top-level one.
//! Blobs cross between stores by hash.
//!
//! Layer: below the host façade. May import the engine, the tiers, explain,
//! the stores and the bottom layer; nothing above.

mod flight;
mod jobs;
mod keyed;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) use self::jobs::spawn;
pub(crate) use self::keyed::Keyed;
use crate::bind::unbound_error;
use crate::bytes::{Bytes, FileStamp};
use crate::component::Export;
use crate::digest::Digest;
use crate::engine::{self, Execute, Execution, Imports, Pending, Runtime};
use crate::entry::{Difference, Explanation, KeyManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::explain;
use crate::report::{CacheMode, CacheStatus, CallOptions, CallRecord};
use crate::sandbox::{Grants, Limits};
use crate::store::Store;
use crate::task::Task;
use crate::tier::local::{blob_missing, LocalTier};
use crate::tier::memory::MemoryTier;
use crate::tier::{Claimed, Dispatch, Found, NewResult, Sent, Stored, Tier, Tiers, Want};
use crate::types::FuncType;
use crate::value::{Blob, BlobSource, Value};

/// What a host shares with every call it runs: the tiers, the engine (made
/// on the first miss), the limits, and the keys executing now.
pub(crate) struct CallPath {
    /// The cache directory: inputs' hashes, closures, run history.
    pub(crate) store: Arc<Store>,
    tiers: Tiers,
    executor: OnceLock<Arc<dyn Execute>>,
    /// Where dispatched calls go, once connected.
    workers: OnceLock<Arc<dyn Dispatch>>,
    /// The digest of the sandbox every call runs in (see [`Grants::digest`]).
    sandbox: Digest,
    /// What each call may use.
    pub(crate) limits: Limits,
    /// Keys executing now, so that identical concurrent calls run once.
    flights: flight::Flights,
    /// How many tasks may execute at once.
    jobs: jobs::Jobs,
    /// The threads a flow's concurrent calls to tasks run on, one per job:
    /// a task's call waits for nothing but its execution (a flow's or a
    /// dispatched call, which wait for others, get threads of their own).
    task_threads: Arc<jobs::Threads>,
}

impl CallPath {
    /// The call path of a host on `store`: the memory tier, then the local
    /// one; the engine is made on the first miss.
    pub(crate) fn new(store: Store, limits: Limits) -> CallPath {
        let store = Arc::new(store);
        let tiers: Vec<Arc<dyn Tier>> = vec![
            Arc::new(MemoryTier::default()),
            Arc::new(LocalTier::new(store.clone())),
        ];
        CallPath::with(store, tiers, limits)
    }

    /// A call path with the given tiers (and, for tests, any executor set
    /// with `CallPath::set_executor`).
    pub(crate) fn with(store: Arc<Store>, tiers: Vec<Arc<dyn Tier>>, limits: Limits) -> CallPath {
        CallPath {
            store,
            tiers: Tiers::new(tiers),
            executor: OnceLock::new(),
            workers: OnceLock::new(),
            sandbox: Grants::default()
                .digest(|_| unreachable!("no directories are granted"))
                .expect("no directory to hash"),
            jobs: jobs::Jobs::new(limits.jobs),
            task_threads: jobs::Threads::new(crate::sandbox::jobs_or_cores(limits.jobs)),
            limits,
            flights: flight::Flights::default(),
        }
    }

    /// Executes misses with `executor` instead of the engine.
    #[cfg(test)]
    pub(crate) fn set_executor(&self, executor: Arc<dyn Execute>) {
        let _ = self.executor.set(executor);
    }

    /// Adds a tier after the local ones, and where dispatched calls go.
    /// `false` if one was added already.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    pub(crate) fn connect(&self, tier: Arc<dyn Tier>, workers: Arc<dyn Dispatch>) -> bool {
        if !self.tiers.connect(tier) {
            return false;
        }
        let _ = self.workers.set(workers);
        true
    }

    /// Whether the tier connected by [`CallPath::connect`] holds blob `hash`.
    pub(crate) fn remote_has_blob(&self, hash: &Digest, len: u64) -> Result<bool> {
        self.tiers.remote_has_blob(hash, len)
    }

    /// The key of `export` of `task` on `args`, and what it was made of.
    pub(crate) fn key_of(
        &self,
        task: &Task,
        export: &str,
        ty: &FuncType,
        args: &[Value],
        grants: &Grants,
    ) -> Result<Keyed> {
        Keyed::of(&self.store, &self.sandbox, task, export, ty, args, grants)
    }

    fn executor(&self) -> Result<&Arc<dyn Execute>> {
        if let Some(e) = self.executor.get() {
            return Ok(e);
        }
        let runtime: Arc<dyn Execute> = Arc::new(Runtime::new(&self.limits, self.store.clone())?);
        Ok(self.executor.get_or_init(|| runtime))
    }

    /// The bytes of `blob`: from memory or its file, else from the first
    /// tier that holds it (verified).
    pub(crate) fn open_blob(&self, blob: &Blob) -> Result<Bytes> {
        if let Some(bytes) = blob.open_uncached() {
            return bytes;
        }
        self.tiers
            .open_blob(blob)?
            .ok_or_else(|| blob_missing(blob))
    }

    /// Calls `export` of `task` as a new run: the call and every call it
    /// makes take this path. Returns what it gave and the run's trace. A
    /// worker's call (`claim: false`) does not claim its key: its sender
    /// holds the claim.
    pub(crate) fn run(
        self: &Arc<Self>,
        task: &Task,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
        claim: bool,
    ) -> (Result<Called>, Vec<CallRecord>) {
        let scope = Scope {
            call_path: self.clone(),
            trace: Arc::default(),
            started: Instant::now(),
            at: Arc::from([]),
            made: Arc::default(),
            in_order: Arc::default(),
            depth: 0,
            opts: opts.clone(),
            claim,
        };
        let called = call(&scope, task, export, args);
        (called, scope.calls())
    }
}

/// Where a call is made: the run's call path and trace, and the call that
/// makes it (none for the run's first call).
#[derive(Clone)]
pub(crate) struct Scope {
    call_path: Arc<CallPath>,
    /// Every call of the run, in the order they started, each with its
    /// place in the call tree.
    trace: Arc<Mutex<Vec<(Place, CallRecord)>>>,
    /// When the run started.
    started: Instant,
    /// The place of the call that makes calls in this scope.
    at: Place,
    /// How many calls it has made.
    made: Arc<AtomicU32>,
    /// Hands over the answers of its concurrent calls in the order it made them.
    in_order: Arc<jobs::InOrder>,
    depth: u32,
    opts: CallOptions,
    /// Whether a miss claims its key in the tiers first (a worker's call
    /// does not: its sender holds the claim).
    claim: bool,
}

/// A call's place in its run's call tree: the positions, among the calls
/// their caller made, of its callers and of itself. Sorting by place lists
/// each call followed by the calls it made, in the order it made them: the
/// same order whatever ran first.
type Place = Arc<[u32]>;

impl Scope {
    /// Every call made so far in this run, each followed by its own.
    fn calls(&self) -> Vec<CallRecord> {
        let mut trace = self.trace.lock().expect("poisoned").clone();
        trace.sort_by(|(a, _), (b, _)| a.cmp(b));
        trace.into_iter().map(|(_, record)| record).collect()
    }

    /// The place of the next call made in this scope.
    fn next_place(&self) -> Place {
        let position = self.made.fetch_add(1, Ordering::Relaxed);
        self.at.iter().copied().chain([position]).collect()
    }

    /// The scope of the calls made by the call at `at`.
    fn inside(&self, at: Place) -> Scope {
        let mut s = self.clone();
        s.at = at;
        s.made = Arc::default();
        s.in_order = Arc::default();
        s.depth += 1;
        s.claim = true;
        // Grants are the called task's; the tasks it calls get none.
        s.opts.grants = Grants::default();
        // `--refresh` re-runs the call asked for; what it calls may still hit.
        if s.opts.cache == CacheMode::Refresh {
            s.opts.cache = CacheMode::Use;
        }
        s
    }

    /// Updates the record in `slot` of the trace.
    fn record(&self, slot: usize, f: impl FnOnce(&mut CallRecord)) {
        f(&mut self.trace.lock().expect("poisoned")[slot].1);
    }
}

/// A flow's imports, as the engine sees them: calls back into this path.
impl Imports for Scope {
    fn open_blob(&self, blob: &Blob) -> Result<Bytes> {
        self.call_path.open_blob(blob)
    }

    fn blob_read(&self, n: u64) {
        self.call_path.store.count_read(n);
    }

    fn call(&self, task: &Task, export: &str, args: &[Value]) -> Result<Option<Value>> {
        call(self, task, export, args).map(|c| c.value)
    }

    fn start(&self, task: &Task, export: &str, args: Vec<Value>) -> Pending {
        // The place and start are taken now, in the order the flow makes
        // its calls, whenever their threads get going.
        let (place, start) = (self.next_place(), Instant::now());
        let (scope, task, export) = (self.clone(), task.clone(), export.to_owned());
        let waits = !task.bound.is_empty() || self.opts.dispatch;
        let call = move || call_at(&scope, place, start, &task, &export, &args).map(|c| c.value);
        let answer = match waits {
            true => spawn(call),
            false => self.call_path.task_threads.answer(call),
        };
        self.in_order.next(answer)
    }
}

/// One finished call.
pub(crate) struct Called {
    pub(crate) value: Option<Value>,
    pub(crate) cache: CacheStatus,
    pub(crate) key: Digest,
    pub(crate) run: Duration,
    pub(crate) stored: bool,
}

/// Calls `export` of `task` in `scope`: the path of every call.
fn call(scope: &Scope, task: &Task, export: &str, args: &[Value]) -> Result<Called> {
    call_at(
        scope,
        scope.next_place(),
        Instant::now(),
        task,
        export,
        args,
    )
}

/// [`call`], at `place` in the run's call tree, made at `start`.
fn call_at(
    scope: &Scope,
    place: Place,
    start: Instant,
    task: &Task,
    export: &str,
    args: &[Value],
) -> Result<Called> {
    let cp = &scope.call_path;
    let (export, ty) = task.resolve(export)?;
    let export_path = export.path();
    let mut grants = scope.opts.grants.clone();
    grants.impure |= task.impure;
    let keyed = cp.key_of(task, &export_path, ty, args, &grants)?;
    let key = keyed.key;
    let cacheable = grants.cacheable();
    let use_cache = scope.opts.cache == CacheMode::Use && cacheable;
    let max_age = match (scope.opts.ttl, task.ttl) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // One span per call: its fields are on every event inside (the
    // engine's, a child call's), and `cache` and `ms` are filled in when it
    // finishes (`CAIRN_LOG=debug`).
    let span = tracing::debug_span!(
        "call",
        task = %task.name,
        export = %export_path,
        key = %key.short(),
        depth = scope.depth,
        cache = tracing::field::Empty,
        ms = tracing::field::Empty,
    );
    let _entered = span.enter();
    let slot = {
        let mut trace = scope.trace.lock().expect("poisoned");
        let record = CallRecord::started(
            task.name.clone(),
            export_path.clone(),
            key,
            scope.depth,
            start.duration_since(scope.started),
        );
        trace.push((place.clone(), record));
        trace.len() - 1
    };
    if let Some(o) = &scope.opts.observer {
        o.call_started(&task.name, &export_path, scope.depth);
    }
    let finish = |cache: CacheStatus, run: Duration, output: (Vec<u8>, Vec<u8>), expires_ms| {
        span.record("cache", cache.as_str());
        span.record("ms", start.elapsed().as_secs_f64() * 1e3);
        tracing::debug!("call finished");
        scope.record(slot, |record| {
            record.cache = cache;
            record.elapsed = start.elapsed();
            record.run = run;
            (record.stdout, record.stderr) = output;
            record.expires_ms = expires_ms;
            if let Some(o) = &scope.opts.observer {
                o.call_finished(record);
            }
        });
    };
    let answer = |hit: Box<Stored>| {
        if hit.remote {
            scope.record(slot, |r| r.remote = true);
        }
        finish(CacheStatus::Hit, hit.run, hit.output, hit.expires_ms);
        Called {
            value: hit.value,
            cache: CacheStatus::Hit,
            key,
            run: hit.run,
            stored: false,
        }
    };
    // Results made before this are stale for this call (`--refresh`, `--ttl`).
    let fresh_after_ms = match (scope.opts.cache, max_age) {
        (CacheMode::Refresh, _) => cp.store.now_ms(),
        (_, Some(age)) => cp.store.now_ms().saturating_sub(age.as_millis() as u64),
        _ => 0,
    };
    let want = Want {
        ty,
        replay: scope.opts.replay_output,
        max_age,
        fresh_after_ms,
    };
    let mut expired = None;
    if use_cache {
        match cp.tiers.get(&key, &want)? {
            Found::Hit(hit) => return Ok(answer(hit)),
            Found::Expired(created) => expired = Some(created),
            Found::Miss => {}
        }
    }
    let max_depth = cp.limits.max_depth;
    if scope.depth >= max_depth {
        return Err(Error::new(
            ErrorKind::TaskFailed,
            format!(
                "flow calls nest deeper than {max_depth} at {} `{export_path}`; is a flow calling itself?",
                task.name
            ),
        ));
    }
    let unbound = task.unbound_imports();
    if !unbound.is_empty() {
        return Err(unbound_error(task, &unbound));
    }
    let manifest = (scope.opts.cache != CacheMode::Off && cacheable)
        .then(|| keyed.manifest(&cp.store, task, &export_path, ty, args, &grants))
        .transpose()?;
    if let (Some(m), true) = (&manifest, scope.opts.explain) {
        let explanation = explain_miss(&cp.store, task, &key, m, expired)?;
        scope.record(slot, |r| r.explanation = Some(explanation));
    }
    // Single flight: one execution per key at a time in this process (and,
    // with a shared tier, across machines); a call that waited finds the
    // result the first one stored.
    let flight = use_cache.then(|| cp.flights.enter(&key));
    let result = (|| -> Result<Settled> {
        let _running = flight.as_ref().map(|f| f.hold());
        if flight.is_some() {
            if let Found::Hit(hit) = cp.tiers.get_local(&key, &want)? {
                return Ok(Settled::Hit(hit));
            }
        }
        // Only results that will be published are worth waiting for.
        let _claim = if use_cache && scope.claim && task.persist {
            match cp.tiers.claim(&key, &want)? {
                Claimed::Mine(hold) => hold,
                Claimed::Published => match cp.tiers.get_local(&key, &want)? {
                    Found::Hit(mut hit) => {
                        hit.remote = true;
                        return Ok(Settled::Hit(hit));
                    }
                    _ => None,
                },
            }
        } else {
            None
        };
        // Tasks (not flows: they would hold a worker while waiting for
        // their own calls) with nothing granted can run elsewhere.
        let portable = task.bound.is_empty() && grants.is_empty() && task.persist;
        let dispatch = scope.opts.dispatch && portable && manifest.is_some();
        if let Some(workers) = cp.workers.get().filter(|_| dispatch) {
            let sent = Sent {
                task,
                export: &export_path,
                key: &key,
                args,
                encoded: &keyed.encoded,
                fresh_after_ms,
                open_blob: &|b| cp.open_blob(b),
            };
            if let Some(worker) = workers.dispatch(&sent)? {
                let want = Want {
                    max_age: None,
                    ..want
                };
                return match cp.tiers.get_local(&key, &want)? {
                    Found::Hit(hit) => Ok(Settled::Dispatched(hit, worker)),
                    _ => Err(Error::internal(
                        "a worker's result is not in the local cache after it was copied",
                    )),
                };
            }
        }
        let run = Run {
            scope,
            task,
            export,
            ty,
            args,
            keyed: &keyed,
            grants: &grants,
            place: &place,
            expired: expired.is_some(),
        };
        run.execute(manifest)
            .map(|e| Settled::Executed(Box::new(e)))
    })();
    if let Some(f) = flight {
        cp.flights.leave(&key, f);
    }
    let (exec, stored, status, expires_ms) = match result? {
        Settled::Executed(executed) => *executed,
        Settled::Hit(hit) => return Ok(answer(hit)),
        Settled::Dispatched(hit, worker) => {
            let status = match expired {
                Some(_) => CacheStatus::Expired,
                None => CacheStatus::Miss,
            };
            scope.record(slot, |r| r.worker = Some(worker));
            finish(status, hit.run, hit.output, hit.expires_ms);
            return Ok(Called {
                value: hit.value,
                cache: status,
                key,
                run: hit.run,
                stored: true,
            });
        }
    };
    finish(status, exec.run, (exec.stdout, exec.stderr), expires_ms);
    Ok(Called {
        value: exec.value,
        cache: status,
        key,
        run: exec.run,
        stored,
    })
}

/// Why a call that is about to run missed: the entry had expired, or what
/// differs from the nearest earlier entry for the same export.
fn explain_miss(
    store: &Store,
    task: &Task,
    key: &Digest,
    manifest: &KeyManifest,
    expired: Option<u64>,
) -> Result<Explanation> {
    if let Some(created_ms) = expired {
        return Ok(Explanation {
            against: Some(*key),
            differences: vec![Difference::Expired {
                created_ms: Some(created_ms),
            }],
        });
    }
    let mut tree = Vec::new();
    task.closure_nodes(&mut tree);
    let nodes = |c: &Digest| match tree.iter().find(|(d, _, _)| d == c) {
        Some((_, node, _)) => Ok(Some(node.clone())),
        None => store.closure(c),
    };
    explain::explain(store, key, manifest, u64::MAX, &nodes)
}

/// How a call that missed in the first lookup was settled.
enum Settled {
    /// Found after all: stored meanwhile by another call in this process,
    /// or published by another machine that held the claim.
    Hit(Box<Stored>),
    /// Executed by the named worker; its result is now in the local cache.
    Dispatched(Box<Stored>, String),
    /// Executed here: the execution, whether it was stored, its status and
    /// when it expires.
    Executed(Box<(Execution, bool, CacheStatus, Option<u64>)>),
}

/// A call that missed, about to run here.
struct Run<'a> {
    scope: &'a Scope,
    task: &'a Task,
    export: &'a Export,
    ty: &'a FuncType,
    args: &'a [Value],
    keyed: &'a Keyed,
    grants: &'a Grants,
    /// Its place in the run's call tree.
    place: &'a Place,
    /// Whether a stored result had expired.
    expired: bool,
}

impl Run<'_> {
    /// Runs the call in the engine and stores its result as the task's
    /// policy says. Returns the execution, whether the result was written to
    /// the cache, the call's status (a miss, expired, or uncacheable when it
    /// or anything it called was: an impure grant, a writable directory) and
    /// when the result expires.
    fn execute(
        self,
        manifest: Option<KeyManifest>,
    ) -> Result<(Execution, bool, CacheStatus, Option<u64>)> {
        let (scope, task, key) = (self.scope, self.task, &self.keyed.key);
        let cp = &scope.call_path;
        tracing::debug!("executing");
        let inside = scope.inside(self.place.clone());
        let exec = {
            // A flow waits for its calls most of the time: only tasks take
            // a job, so flows never keep the tasks they wait for from running.
            let _job = task.bound.is_empty().then(|| cp.jobs.take());
            cp.executor()?.execute(engine::Call {
                task,
                export: self.export,
                ty: self.ty,
                args: self.args,
                key,
                grants: self.grants,
                imports: Arc::new(inside),
            })?
        };
        inputs_unchanged(self.args)?;
        // What this call made from an uncacheable call is uncacheable too,
        // and expires no later than what it was made from.
        let (tainted, inherited) = {
            let trace = scope.trace.lock().expect("poisoned");
            let place = &self.place[..];
            let below = || {
                trace
                    .iter()
                    .filter(|(p, _)| p.len() > place.len() && p.starts_with(place))
                    .map(|(_, r)| r)
            };
            (
                below().any(|r| r.cache == CacheStatus::Uncacheable),
                below().filter_map(|r| r.expires_ms).min(),
            )
        };
        let tainted = tainted || !self.grants.cacheable();
        let own = task
            .ttl
            .map(|t| cp.store.now_ms().saturating_add(t.as_millis() as u64));
        let expires_ms = own.into_iter().chain(inherited).min();
        let status = match (tainted, self.expired) {
            (true, _) => CacheStatus::Uncacheable,
            (false, true) => CacheStatus::Expired,
            (false, false) => CacheStatus::Miss,
        };
        let stored = scope.opts.cache != CacheMode::Off && !tainted;
        if stored {
            cp.tiers.put(&NewResult {
                key,
                task,
                ty: self.ty,
                value: exec.value.as_ref(),
                run: exec.run,
                stdout: &exec.stdout,
                stderr: &exec.stderr,
                manifest: manifest
                    .as_ref()
                    .ok_or_else(|| Error::internal("a result to store has no key manifest"))?,
                persist: task.persist,
                args: &self.keyed.encoded,
                expires_ms,
            })?;
        }
        Ok((exec, stored && task.persist, status, expires_ms))
    }
}

/// Fails if a file-backed input changed while the call ran: the result might
/// not be the answer for the content the key names.
fn inputs_unchanged(args: &[Value]) -> Result<()> {
    let mut changed = None;
    for v in args {
        v.for_each_blob(&mut |b| {
            if let BlobSource::File(path, stamp) = &b.source {
                if FileStamp::now(path).as_ref() != Some(stamp) {
                    changed = Some(path.clone());
                }
            }
        });
    }
    match changed {
        Some(path) => Err(Error::new(
            ErrorKind::Io,
            format!(
                "{} changed while the task ran, so its result was not cached; run again",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}
