//! The one path every call takes — key → lookup → run on a miss → store —
//! and flows: components whose imports are bound to other tasks, so that
//! every cross-component call takes that same path.
//!
//! A flow's import functions are defined dynamically: each computes the child
//! call's key, answers from the cache on a hit (nothing below it compiles,
//! instantiates or reads input), and otherwise runs the child in its own
//! store. Blobs cross between stores by hash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Val};
use wasmtime::StoreContextMut;

use crate::blob::Bytes;
use crate::codec;
use crate::component::Export;
use crate::digest::Digest;
use crate::engine::{self, BlobReader, Execution, Runtime};
use crate::entry::{shorten, ArgManifest, ClosureNode, KeyManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::explain::{self, Difference, Explanation};
use crate::host::{CacheMode, CacheStatus, CallOptions, CallRecord};
use crate::key::{self, KeyInputs};
use crate::remote::{self, tier, Claimed, Remote};
use crate::sandbox::{Grants, Limits, Sandbox};
use crate::store::{now_ms, FileStamp, NewResult, Output, Store, INLINE_MAX};
use crate::task::{host_provided, Task};
use crate::types::FuncType;
use crate::value::{Blob, BlobSource, Value};

/// What a [`crate::Host`] shares with the calls it runs.
pub(crate) struct Inner {
    pub(crate) store: Store,
    runtime: OnceLock<Runtime>,
    /// The digest of the sandbox every call runs in (see [`Grants::digest`]).
    sandbox: Digest,
    /// What each call may use.
    pub(crate) limits: Limits,
    /// Results of tasks that do not persist, for the life of the host.
    memory: Mutex<HashMap<Digest, (Option<Value>, Duration)>>,
    /// Keys being executed now, so that identical concurrent calls run once.
    running: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    /// The shared tier, once connected.
    pub(crate) remote: OnceLock<Remote>,
}

/// Where a call runs: its host, the run's record of calls, and its depth.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) inner: Arc<Inner>,
    trace: Arc<Mutex<Vec<CallRecord>>>,
    depth: u32,
    opts: CallOptions,
    /// Whether a miss claims its key in the shared tier first (a worker's
    /// call does not: its sender holds the claim).
    claim: bool,
}

impl Scope {
    /// The scope of a new top-level call.
    pub(crate) fn root(inner: Arc<Inner>, opts: CallOptions) -> Scope {
        Scope {
            inner,
            trace: Arc::default(),
            depth: 0,
            opts,
            claim: true,
        }
    }

    /// The scope of a call a worker runs for another host.
    pub(crate) fn worker(inner: Arc<Inner>, opts: CallOptions) -> Scope {
        Scope {
            claim: false,
            ..Scope::root(inner, opts)
        }
    }

    /// Every call made so far in this run, in the order they started.
    pub(crate) fn calls(&self) -> Vec<CallRecord> {
        self.trace.lock().expect("poisoned").clone()
    }

    fn child(&self) -> Scope {
        let mut s = self.clone();
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
}

/// One finished call.
pub(crate) struct Called {
    pub(crate) value: Option<Value>,
    pub(crate) cache: CacheStatus,
    pub(crate) key: Digest,
    pub(crate) run: Duration,
    pub(crate) stored: bool,
}

impl Inner {
    pub(crate) fn new(store: Store, limits: Limits) -> Inner {
        Inner {
            store,
            runtime: OnceLock::new(),
            sandbox: Grants::default()
                .digest(|_| unreachable!("no directories are granted"))
                .expect("no directory to hash"),
            limits,
            memory: Mutex::default(),
            running: Mutex::default(),
            remote: OnceLock::new(),
        }
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
        if args.len() != ty.params.len() {
            return Err(Error::new(
                ErrorKind::BadArguments,
                format!(
                    "`{export}` takes {} argument(s), {} given: {ty}",
                    ty.params.len(),
                    args.len()
                ),
            ));
        }
        let mut encoded = Vec::new();
        let mut ends = Vec::with_capacity(args.len());
        for (v, (name, t)) in args.iter().zip(&ty.params) {
            codec::encode(v, t, &mut encoded).map_err(|e| {
                Error::new(
                    ErrorKind::BadArguments,
                    format!("argument `{name}` of `{export}`: {e}"),
                )
            })?;
            ends.push(encoded.len());
        }
        let sandbox = if grants.is_empty() {
            self.sandbox
        } else {
            grants.digest(|dir| self.store.hash_dir(dir))?
        };
        let key = key::call_key(&KeyInputs {
            closure: task.closure,
            export,
            func: ty,
            args: &encoded,
            sandbox,
        });
        Ok(Keyed {
            key,
            encoded,
            ends,
            sandbox,
        })
    }

    /// The key manifest of a call: what `cache show` prints and `--explain`
    /// compares.
    fn manifest(
        &self,
        task: &Task,
        path: &str,
        ty: &FuncType,
        args: &[Value],
        grants: &Grants,
        keyed: &Keyed,
    ) -> Result<KeyManifest> {
        let mut start = 0;
        let mut arg_list = Vec::with_capacity(args.len());
        let mut inputs = Vec::new();
        for ((v, (name, _)), &end) in args.iter().zip(&ty.params).zip(&keyed.ends) {
            arg_list.push(ArgManifest {
                name: name.clone(),
                digest: Digest::of(&keyed.encoded[start..end]),
                shown: shown(v),
            });
            start = end;
            v.for_each_blob(&mut |b| {
                if let BlobSource::File(path, _) = &b.source {
                    inputs.push((b.hash(), path.clone()));
                }
            });
        }
        Ok(KeyManifest {
            component: task.name.clone(),
            closure: task.closure,
            export: path.to_string(),
            signature: ty.to_string(),
            args: arg_list,
            sandbox: keyed.sandbox,
            grants: grants.describe(|dir| self.store.hash_dir(dir))?,
            args_object: (Digest::of(&keyed.encoded), keyed.encoded.len() as u64),
            blobs: Vec::new(),
            inputs,
        })
    }

    fn runtime(&self) -> Result<&Runtime> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let r = Runtime::new(&self.limits)?;
        Ok(self.runtime.get_or_init(|| r))
    }

    /// Looks up a stored result. A miss when none is stored, or when the
    /// stored value is missing or damaged (then the call runs and repairs
    /// it); expired when it outlived its time to live, or is older than
    /// `max_age`.
    fn lookup(
        &self,
        key: &Digest,
        ty: &FuncType,
        replay: bool,
        max_age: Option<Duration>,
    ) -> Result<Lookup> {
        if let Some((value, run)) = self.memory.lock().expect("poisoned").get(key) {
            return Ok(Lookup::Hit(Box::new(Stored {
                value: value.clone(),
                run: *run,
                output: (Vec::new(), Vec::new()),
                expires_ms: None,
            })));
        }
        let Some((record, bytes)) = self.store.stored_value(key)? else {
            return Ok(Lookup::Miss);
        };
        let now = now_ms();
        let too_old = max_age
            .is_some_and(|age| record.created_ms.saturating_add(age.as_millis() as u64) <= now);
        if too_old || record.expires_ms.is_some_and(|t| t <= now) {
            return Ok(Lookup::Expired(record.created_ms));
        }
        let value = match &ty.result {
            None if bytes.is_empty() => None,
            None => return Ok(Lookup::Miss),
            Some(t) => match codec::from_bytes(&bytes, t) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(%key, "stored result does not decode ({e}); re-executing");
                    return Ok(Lookup::Miss);
                }
            },
        };
        // A blob of the result that is gone (or cut short) makes the entry a
        // miss: the call re-executes and stores the blob again. One left in
        // the shared tier (taken lazily) counts while the tier is connected.
        let mut absent = Vec::new();
        if let Some(v) = &value {
            v.for_each_blob(&mut |b| {
                if matches!(b.source, BlobSource::Stored)
                    && !self.store.has_object(&b.hash(), b.len())
                {
                    absent.push((b.hash(), b.len()));
                }
            });
        }
        for (hash, len) in absent {
            let shared = match self.remote.get() {
                Some(r) => r.has_object(&hash, len)?,
                None => false,
            };
            if !shared {
                tracing::warn!(%key, "a blob of the stored result is missing; re-executing");
                return Ok(Lookup::Miss);
            }
        }
        let output = |o: Option<(Digest, u64)>| -> Result<Vec<u8>> {
            match o.filter(|_| replay) {
                Some((hash, len)) => Ok(self.store.object(&hash, len)?.unwrap_or_default()),
                None => Ok(Vec::new()),
            }
        };
        self.store.hit(key);
        Ok(Lookup::Hit(Box::new(Stored {
            value,
            run: Duration::from_micros(record.run_us),
            output: (output(record.stdout)?, output(record.stderr)?),
            expires_ms: record.expires_ms,
        })))
    }

    /// The gate of `key`: held while the key executes.
    fn gate(&self, key: &Digest) -> Arc<Mutex<()>> {
        self.running
            .lock()
            .expect("poisoned")
            .entry(*key)
            .or_default()
            .clone()
    }

    /// Forgets the gate of `key` once nobody else holds it.
    fn ungate(&self, key: &Digest, gate: Option<Arc<Mutex<()>>>) {
        let Some(gate) = gate else { return };
        let mut running = self.running.lock().expect("poisoned");
        // Clones are made and dropped only under this lock: once ours is
        // gone, one left means only the map's.
        drop(gate);
        if running.get(key).is_some_and(|g| Arc::strong_count(g) == 1) {
            running.remove(key);
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one result's full description")]
    fn put(
        &self,
        key: &Digest,
        task: &Task,
        ty: &FuncType,
        exec: &Execution,
        mut manifest: KeyManifest,
        args: &[u8],
        expires_ms: Option<u64>,
    ) -> Result<()> {
        let (encoded, blobs) = match (&exec.value, &ty.result) {
            (Some(v), Some(t)) => {
                let encoded = codec::to_bytes(v, t)
                    .map_err(|e| Error::internal(format!("result does not encode: {e}")))?;
                v.for_each_blob(&mut |b| manifest.blobs.push((b.hash(), b.len())));
                (encoded, result_blobs(v)?)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        let mut closures = Vec::new();
        closure_nodes(task, &mut closures);
        self.store.put_result(NewResult {
            key: *key,
            value: &encoded,
            blobs: &refs,
            run: exec.run,
            output: Output {
                stdout: &exec.stdout,
                stderr: &exec.stderr,
            },
            expires_ms,
            manifest: &manifest,
            args,
            closures,
        })?;
        if let Some(remote) = self.remote.get() {
            tier::push(&self.store, remote, key)?;
        }
        Ok(())
    }
}

/// A call's key and what it was made of.
pub(crate) struct Keyed {
    pub(crate) key: Digest,
    /// The arguments' canonical encoding, all parameters in order.
    encoded: Vec<u8>,
    /// Where each argument's encoding ends in `encoded`.
    ends: Vec<usize>,
    sandbox: Digest,
}

/// What a lookup found.
enum Lookup {
    Hit(Box<Stored>),
    /// A result stored at this time (ms since the epoch) that has expired.
    Expired(u64),
    Miss,
}

/// A result found in the cache.
struct Stored {
    value: Option<Value>,
    run: Duration,
    /// The stdout and stderr of the run that produced it, if asked for.
    output: (Vec<u8>, Vec<u8>),
    expires_ms: Option<u64>,
}

/// An argument for people: WAVE, a file-backed blob as `@path`, shortened.
fn shown(v: &Value) -> String {
    let text = match v {
        Value::Blob(Blob {
            source: BlobSource::File(path, _),
            ..
        }) => format!("@{}", path.display()),
        v => v.to_wave(),
    };
    shorten(&text, ArgManifest::SHOWN_MAX)
}

/// The closure tree of `task`: each node with the task it describes.
pub(crate) fn closure_nodes<'a>(task: &'a Task, out: &mut Vec<(Digest, ClosureNode, &'a Task)>) {
    let node = ClosureNode {
        name: task.name.clone(),
        component: task.hash,
        impure: task.impure,
        imports: task
            .bound
            .iter()
            .map(|(i, t)| (i.clone(), t.closure))
            .collect(),
    };
    out.push((task.closure, node, task));
    for (_, child) in task.bound.iter() {
        closure_nodes(child, out);
    }
}

/// The content of every blob in a result that the cache does not hold yet.
fn result_blobs(v: &Value) -> Result<Vec<Arc<[u8]>>> {
    let mut out = Vec::new();
    let mut err = None;
    v.for_each_blob(&mut |b: &Blob| match &b.source {
        BlobSource::Bytes(bytes) => out.push(bytes.clone()),
        BlobSource::File(path, _) => match std::fs::read(path) {
            Ok(bytes) => out.push(bytes.into()),
            Err(e) => err = Some(Error::io(format_args!("cannot read {}", path.display()), e)),
        },
        BlobSource::Stored => {}
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Calls `export` of `task` in `scope`: the path of every call, top-level or
/// made by a flow.
pub(crate) fn call(scope: &Scope, task: &Task, export: &str, args: &[Value]) -> Result<Called> {
    let inner = &scope.inner;
    let (export, ty) = task.resolve(export)?;
    let path = export.path();
    let mut grants = scope.opts.grants.clone();
    grants.impure |= task.impure;
    let keyed = inner.key_of(task, &path, ty, args, &grants)?;
    let key = keyed.key;
    let cacheable = grants.cacheable();
    let use_cache = scope.opts.cache == CacheMode::Use && cacheable;
    let max_age = match (scope.opts.ttl, task.ttl) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let start = Instant::now();
    let slot = {
        let mut trace = scope.trace.lock().expect("poisoned");
        trace.push(CallRecord::started(
            task.name.clone(),
            path.clone(),
            key,
            scope.depth,
        ));
        trace.len() - 1
    };
    if let Some(o) = &scope.opts.observer {
        o.call_started(&task.name, &path, scope.depth);
    }
    let finish = |cache: CacheStatus, run: Duration, output: (Vec<u8>, Vec<u8>), expires_ms| {
        let mut trace = scope.trace.lock().expect("poisoned");
        let record = &mut trace[slot];
        record.cache = cache;
        record.elapsed = start.elapsed();
        record.run = run;
        (record.stdout, record.stderr) = output;
        record.expires_ms = expires_ms;
        if let Some(o) = &scope.opts.observer {
            o.call_finished(record);
        }
    };
    let answer = |hit: Box<Stored>| {
        finish(CacheStatus::Hit, hit.run, hit.output, hit.expires_ms);
        Called {
            value: hit.value,
            cache: CacheStatus::Hit,
            key,
            run: hit.run,
            stored: false,
        }
    };
    let from_remote = || scope.trace.lock().expect("poisoned")[slot].remote = true;
    let replay = scope.opts.replay_output;
    // Results made before this are stale for this call (`--refresh`, `--ttl`).
    let fresh_after_ms = match (scope.opts.cache, max_age) {
        (CacheMode::Refresh, _) => now_ms(),
        (_, Some(age)) => now_ms().saturating_sub(age.as_millis() as u64),
        _ => 0,
    };
    let mut expired = None;
    if use_cache {
        match inner.lookup(&key, ty, replay, max_age)? {
            Lookup::Hit(hit) => return Ok(answer(hit)),
            Lookup::Expired(created) => expired = Some(created),
            Lookup::Miss => {}
        }
        // The shared tier: a hit there is copied into the local cache.
        if let Some(remote) = inner.remote.get() {
            if tier::pull(&inner.store, remote, &key, fresh_after_ms)? {
                if let Lookup::Hit(hit) = inner.lookup(&key, ty, replay, max_age)? {
                    from_remote();
                    return Ok(answer(hit));
                }
            }
        }
    }
    let max_depth = inner.limits.max_depth;
    if scope.depth >= max_depth {
        return Err(Error::new(
            ErrorKind::TaskFailed,
            format!(
                "flow calls nest deeper than {max_depth} at {} `{path}`; is a flow calling itself?",
                task.name
            ),
        ));
    }
    let unbound = task.unbound_imports();
    if !unbound.is_empty() {
        return Err(unbound_error(task, &unbound));
    }
    let manifest = (scope.opts.cache != CacheMode::Off && cacheable)
        .then(|| inner.manifest(task, &path, ty, args, &grants, &keyed))
        .transpose()?;
    if let (Some(m), true) = (&manifest, scope.opts.explain) {
        let explanation = match expired {
            Some(created_ms) => Explanation {
                against: Some(key),
                differences: vec![Difference::Expired {
                    created_ms: Some(created_ms),
                }],
            },
            None => {
                let mut tree = Vec::new();
                closure_nodes(task, &mut tree);
                let nodes = |c: &Digest| match tree.iter().find(|(d, _, _)| d == c) {
                    Some((_, node, _)) => Ok(Some(node.clone())),
                    None => inner.store.closure(c),
                };
                explain::explain(&inner.store, &key, m, u64::MAX, &nodes)?
            }
        };
        scope.trace.lock().expect("poisoned")[slot].explanation = Some(explanation);
    }
    // Single flight: one execution per key at a time in this process (and,
    // with a shared tier, across machines); a call that waited finds the
    // result the first one stored.
    let gate = use_cache.then(|| inner.gate(&key));
    let result = (|| -> Result<Settled> {
        let _running = gate
            .as_ref()
            .map(|g| g.lock().unwrap_or_else(|e| e.into_inner()));
        if gate.is_some() {
            if let Lookup::Hit(hit) = inner.lookup(&key, ty, replay, max_age)? {
                return Ok(Settled::Hit(hit, false));
            }
        }
        let remote = inner.remote.get().filter(|r| !r.is_down());
        // Only results that will be published are worth waiting for.
        let _claim = match remote {
            Some(r) if use_cache && scope.claim && task.persist => {
                match remote::claim_or_wait(&inner.store, r, &key, fresh_after_ms)? {
                    Claimed::Mine(claim) => claim,
                    Claimed::Published => match inner.lookup(&key, ty, replay, max_age)? {
                        Lookup::Hit(hit) => return Ok(Settled::Hit(hit, true)),
                        _ => None,
                    },
                }
            }
            _ => None,
        };
        // Tasks (not flows: they would hold a worker while waiting for
        // their own calls) with nothing granted can run elsewhere.
        let portable = task.bound.is_empty() && grants.is_empty() && task.persist;
        let dispatch = scope.opts.dispatch && portable && manifest.is_some();
        if let Some(r) = remote.filter(|_| dispatch) {
            let sent = remote::work::Call {
                task,
                export: &path,
                key: &key,
                args,
                encoded: &keyed.encoded,
                fresh_after_ms,
            };
            if let Some(worker) = remote::work::dispatch(inner, r, &sent)? {
                return match inner.lookup(&key, ty, replay, None)? {
                    Lookup::Hit(hit) => Ok(Settled::Dispatched(hit, worker)),
                    _ => Err(Error::internal(
                        "a worker's result is not in the local cache after it was copied",
                    )),
                };
            }
        }
        let call = Execute {
            scope,
            task,
            export,
            ty,
            args,
            keyed: &keyed,
            grants: &grants,
            slot,
            expired: expired.is_some(),
        };
        call.run(manifest).map(|e| Settled::Executed(Box::new(e)))
    })();
    inner.ungate(&key, gate);
    let (exec, stored, status, expires_ms) = match result? {
        Settled::Executed(executed) => *executed,
        Settled::Hit(hit, remote) => {
            if remote {
                from_remote();
            }
            return Ok(answer(hit));
        }
        Settled::Dispatched(hit, worker) => {
            let status = match expired {
                Some(_) => CacheStatus::Expired,
                None => CacheStatus::Miss,
            };
            scope.trace.lock().expect("poisoned")[slot].worker = Some(worker);
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

/// How a call that missed in the first lookup was settled.
enum Settled {
    /// Found after all: stored meanwhile by another call in this process, or
    /// (`true`) published by another machine that held the claim.
    Hit(Box<Stored>, bool),
    /// Executed by the named worker; its result is now in the local cache.
    Dispatched(Box<Stored>, String),
    /// Executed here: the execution, whether it was stored, its status and
    /// when it expires.
    Executed(Box<(Execution, bool, CacheStatus, Option<u64>)>),
}

/// A call that missed, about to run.
struct Execute<'a> {
    scope: &'a Scope,
    task: &'a Task,
    export: &'a Export,
    ty: &'a FuncType,
    args: &'a [Value],
    keyed: &'a Keyed,
    grants: &'a Grants,
    /// Its place in the run's trace.
    slot: usize,
    /// Whether a stored result had expired.
    expired: bool,
}

impl Execute<'_> {
    /// Runs the call and stores its result as the task's policy says.
    /// Returns the execution, whether the result was written to the cache,
    /// the call's status (a miss, expired, or uncacheable when it or anything
    /// it called was: an impure grant, a writable directory) and when the
    /// result expires.
    fn run(
        self,
        manifest: Option<KeyManifest>,
    ) -> Result<(Execution, bool, CacheStatus, Option<u64>)> {
        let (scope, task, key) = (self.scope, self.task, &self.keyed.key);
        let inner = &scope.inner;
        let exec = inner.runtime()?.execute(
            task,
            |linker| define_imports(linker, task),
            self.export,
            self.ty,
            self.args,
            key,
            scope.clone(),
            self.grants,
        )?;
        inputs_unchanged(self.args)?;
        // What this call made from an uncacheable call is uncacheable too,
        // and expires no later than what it was made from.
        let (tainted, inherited) = {
            let trace = scope.trace.lock().expect("poisoned");
            let below = &trace[self.slot + 1..];
            (
                below.iter().any(|r| r.cache == CacheStatus::Uncacheable),
                below.iter().filter_map(|r| r.expires_ms).min(),
            )
        };
        let tainted = tainted || !self.grants.cacheable();
        let own = task
            .ttl
            .map(|t| now_ms().saturating_add(t.as_millis() as u64));
        let expires_ms = own.into_iter().chain(inherited).min();
        let status = match (tainted, self.expired) {
            (true, _) => CacheStatus::Uncacheable,
            (false, true) => CacheStatus::Expired,
            (false, false) => CacheStatus::Miss,
        };
        let stored = scope.opts.cache != CacheMode::Off && !tainted;
        match manifest {
            Some(m) if stored && task.persist => inner.put(
                key,
                task,
                self.ty,
                &exec,
                m,
                &self.keyed.encoded,
                expires_ms,
            )?,
            _ if stored => {
                inner
                    .memory
                    .lock()
                    .expect("poisoned")
                    .insert(*key, (exec.value.clone(), exec.run));
            }
            _ => {}
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

fn unbound_error(task: &Task, unbound: &[&str]) -> Error {
    Error::new(
        ErrorKind::InvalidComponent,
        format!(
            "{} imports {} which no component provides; give the component that exports it with --with (or in cairn.toml)",
            task.name,
            unbound.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// Defines each function of each bound import of `task` as a call through
/// the cache into the bound task.
fn define_imports(linker: &mut Linker<Sandbox>, task: &Task) -> wasmtime::Result<()> {
    for (import, child) in task.bound.iter() {
        let mut instance = linker.instance(import)?;
        for export in child
            .exports()
            .iter()
            .filter(|e| e.interface.as_deref() == Some(import.as_str()))
        {
            let Ok(ty) = export.ty.clone() else { continue };
            let child = child.clone();
            let path = export.path();
            instance.func_new(&export.func, move |mut store, _, params, results| {
                import_call(&mut store, &child, &path, &ty, params, results)
            })?;
        }
    }
    Ok(())
}

/// A flow calling `path` of `child`: arguments out of the flow's store, the
/// call through the cache, the result into the flow's store.
fn import_call(
    store: &mut StoreContextMut<'_, Sandbox>,
    child: &Task,
    path: &str,
    ty: &FuncType,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let scope = store.data().scope.child();
    let args = params
        .iter()
        .zip(&ty.params)
        .map(|(v, (_, t))| engine::from_val(store, v.clone(), t))
        .collect::<wasmtime::Result<Vec<_>>>()?;
    let called = call(&scope, child, path, &args).map_err(wasmtime::Error::new)?;
    if let (Some(v), Some(t), Some(slot)) = (&called.value, &ty.result, results.first_mut()) {
        *slot = engine::to_val(store, v, t).map_err(wasmtime::Error::new)?;
    }
    Ok(())
}

/// Binds the imports of `task` — and, recursively, of the tasks it binds — to
/// the components of `pool` that export them. `choose` names the task to use
/// for an import more than one component exports.
pub(crate) fn bind(task: &Task, pool: &[Task], choose: &[(String, String)]) -> Result<Task> {
    bind_rec(task, pool, choose, &mut Vec::new())
}

fn bind_rec(
    task: &Task,
    pool: &[Task],
    choose: &[(String, String)],
    stack: &mut Vec<(Digest, String)>,
) -> Result<Task> {
    let cycle = stack.iter().any(|(h, _)| *h == task.hash);
    stack.push((task.hash, task.name.clone()));
    if cycle {
        let chain: Vec<&str> = stack.iter().map(|(_, n)| n.as_str()).collect();
        return Err(Error::new(
            ErrorKind::InvalidComponent,
            format!(
                "flows call each other in a cycle: {}; break the cycle",
                chain.join(" → ")
            ),
        ));
    }
    let mut bound = Vec::new();
    for import in task.imports().iter().filter(|i| !host_provided(i)) {
        let providers: Vec<&Task> = pool
            .iter()
            .filter(|t| t.exports_interface(import))
            .collect();
        let chosen = choose
            .iter()
            .find(|(i, _)| i == import)
            .map(|(_, name)| name);
        let provider = match (chosen, providers.as_slice()) {
            (Some(name), _) => providers.iter().find(|t| &t.name == name).copied().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidComponent,
                    format!("`{import}` is bound to `{name}`, which does not export it (or is not given)"),
                )
            })?,
            (None, [one]) => *one,
            (None, []) => return Err(unbound_error(task, &[import])),
            (None, many) => {
                return Err(Error::new(
                    ErrorKind::InvalidComponent,
                    format!(
                        "`{import}` (imported by {}) is exported by {}; choose one under [bind] in cairn.toml",
                        task.name,
                        many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" and ")
                    ),
                ))
            }
        };
        bound.push((import.clone(), bind_rec(provider, pool, choose, stack)?));
    }
    stack.pop();
    let mut out = task.clone();
    out.set_bound(bound);
    Ok(out)
}

impl Inner {
    /// Copies a stored blob the local cache lacks from the shared tier (if
    /// connected and it has it), verified: blobs of shared results are
    /// fetched when first read, not when the result is taken.
    fn fetch_blob(&self, blob: &Blob) -> Result<()> {
        let Some(remote) = self.remote.get() else {
            return Ok(());
        };
        if self.store.has_object(&blob.hash(), blob.len()) {
            return Ok(());
        }
        if let Some(bytes) = remote.object(&blob.hash())? {
            if bytes.len() as u64 == blob.len() {
                self.store.put_object(&bytes)?;
            }
        }
        Ok(())
    }
}

impl BlobReader for Inner {
    fn open(&self, blob: &Blob) -> Result<Bytes> {
        if let Some(bytes) = engine::open_uncached(blob) {
            return bytes;
        }
        self.fetch_blob(blob)?;
        let missing = || {
            Error::new(
                ErrorKind::Cache,
                format!(
                    "blob {} is not in the cache (removed or damaged); re-run what produced it",
                    blob.hash()
                ),
            )
        };
        if blob.len() as usize > INLINE_MAX {
            let path = self.store.object_file(&blob.hash());
            let (hash, _) = crate::digest::hash_file(&path).map_err(|_| missing())?;
            if hash != blob.hash() {
                // Drop it: the next lookup of what produced it is a miss,
                // which re-executes and stores it again.
                self.store.drop_object(&blob.hash(), blob.len())?;
                return Err(missing());
            }
            return crate::blob::open_file(&path).map_err(|_| missing());
        }
        let bytes = self
            .store
            .object(&blob.hash(), blob.len())?
            .ok_or_else(missing)?;
        Ok(Bytes::Memory(bytes.into()))
    }
}
