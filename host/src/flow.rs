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
use crate::error::{Error, ErrorKind, Result};
use crate::host::{CacheMode, CacheStatus, CallOptions, CallRecord};
use crate::key::{self, KeyInputs};
use crate::sandbox::{Grants, Limits, Sandbox};
use crate::store::{FileStamp, Output, Store, INLINE_MAX};
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
}

/// Where a call runs: its host, the run's record of calls, and its depth.
#[derive(Clone)]
pub(crate) struct Scope {
    pub(crate) inner: Arc<Inner>,
    trace: Arc<Mutex<Vec<CallRecord>>>,
    depth: u32,
    opts: CallOptions,
}

impl Scope {
    /// The scope of a new top-level call.
    pub(crate) fn root(inner: Arc<Inner>, opts: CallOptions) -> Scope {
        Scope {
            inner,
            trace: Arc::default(),
            depth: 0,
            opts,
        }
    }

    /// Every call made so far in this run, in the order they started.
    pub(crate) fn calls(&self) -> Vec<CallRecord> {
        self.trace.lock().expect("poisoned").clone()
    }

    fn child(&self) -> Scope {
        let mut s = self.clone();
        s.depth += 1;
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
        }
    }

    /// The key of `export` of `task` on `args`, and the arguments' encoding.
    pub(crate) fn key_of(
        &self,
        task: &Task,
        export: &str,
        ty: &FuncType,
        args: &[Value],
        grants: &Grants,
    ) -> Result<Digest> {
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
        for (v, (name, t)) in args.iter().zip(&ty.params) {
            codec::encode(v, t, &mut encoded).map_err(|e| {
                Error::new(
                    ErrorKind::BadArguments,
                    format!("argument `{name}` of `{export}`: {e}"),
                )
            })?;
        }
        Ok(key::call_key(&KeyInputs {
            closure: task.closure,
            export,
            func: ty,
            args: &encoded,
            sandbox: if grants.is_empty() {
                self.sandbox
            } else {
                grants.digest(|dir| self.store.hash_dir(dir))?
            },
        }))
    }

    fn runtime(&self) -> Result<&Runtime> {
        if let Some(r) = self.runtime.get() {
            return Ok(r);
        }
        let r = Runtime::new(&self.limits)?;
        Ok(self.runtime.get_or_init(|| r))
    }

    /// Looks up a stored result: `None` on a miss, or when the stored value is
    /// missing or damaged (then the call runs and repairs it).
    fn lookup(&self, key: &Digest, ty: &FuncType, replay: bool) -> Result<Option<Stored>> {
        if let Some((value, run)) = self.memory.lock().expect("poisoned").get(key) {
            return Ok(Some(Stored {
                value: value.clone(),
                run: *run,
                output: (Vec::new(), Vec::new()),
            }));
        }
        let Some((record, bytes)) = self.store.stored_value(key)? else {
            return Ok(None);
        };
        let value = match &ty.result {
            None if bytes.is_empty() => None,
            None => return Ok(None),
            Some(t) => match codec::from_bytes(&bytes, t) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(%key, "stored result does not decode ({e}); re-executing");
                    return Ok(None);
                }
            },
        };
        // A blob of the result that is gone (or cut short) makes the entry a
        // miss: the call re-executes and stores the blob again.
        let mut whole = true;
        if let Some(v) = &value {
            v.for_each_blob(&mut |b| {
                if matches!(b.source, BlobSource::Stored)
                    && !self.store.has_object(&b.hash(), b.len())
                {
                    whole = false;
                }
            });
        }
        if !whole {
            tracing::warn!(%key, "a blob of the stored result is missing; re-executing");
            return Ok(None);
        }
        let output = |o: Option<(Digest, u64)>| -> Result<Vec<u8>> {
            match o.filter(|_| replay) {
                Some((hash, len)) => Ok(self.store.object(&hash, len)?.unwrap_or_default()),
                None => Ok(Vec::new()),
            }
        };
        Ok(Some(Stored {
            value,
            run: Duration::from_micros(record.run_us),
            output: (output(record.stdout)?, output(record.stderr)?),
        }))
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

    fn put(
        &self,
        key: &Digest,
        value: Option<&Value>,
        ty: &FuncType,
        exec: &Execution,
    ) -> Result<()> {
        let (encoded, blobs) = match (value, &ty.result) {
            (Some(v), Some(t)) => {
                let encoded = codec::to_bytes(v, t)
                    .map_err(|e| Error::internal(format!("result does not encode: {e}")))?;
                (encoded, result_blobs(v)?)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        let output = Output {
            stdout: &exec.stdout,
            stderr: &exec.stderr,
        };
        self.store
            .put_result(key, &encoded, &refs, exec.run, output)
    }
}

/// A result found in the cache.
struct Stored {
    value: Option<Value>,
    run: Duration,
    /// The stdout and stderr of the run that produced it, if asked for.
    output: (Vec<u8>, Vec<u8>),
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
    let key = inner.key_of(task, &path, ty, args, &grants)?;
    let cacheable = grants.cacheable();
    let start = Instant::now();
    let slot = {
        let mut trace = scope.trace.lock().expect("poisoned");
        trace.push(CallRecord {
            component: task.name.clone(),
            export: path.clone(),
            key,
            cache: CacheStatus::Miss,
            elapsed: Duration::ZERO,
            run: Duration::ZERO,
            depth: scope.depth,
            stdout: Vec::new(),
            stderr: Vec::new(),
        });
        trace.len() - 1
    };
    let finish = |cache: CacheStatus, run: Duration, (stdout, stderr): (Vec<u8>, Vec<u8>)| {
        let mut trace = scope.trace.lock().expect("poisoned");
        let record = &mut trace[slot];
        record.cache = cache;
        record.elapsed = start.elapsed();
        record.run = run;
        record.stdout = stdout;
        record.stderr = stderr;
    };
    let answer = |hit: Stored| {
        finish(CacheStatus::Hit, hit.run, hit.output);
        Called {
            value: hit.value,
            cache: CacheStatus::Hit,
            key,
            run: hit.run,
            stored: false,
        }
    };
    if scope.opts.cache == CacheMode::Use && cacheable {
        if let Some(hit) = inner.lookup(&key, ty, scope.opts.replay_output)? {
            return Ok(answer(hit));
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
    // Single flight: one execution per key at a time in this process; a call
    // that waited finds the result the first one stored.
    let gate = (scope.opts.cache == CacheMode::Use && cacheable).then(|| inner.gate(&key));
    let result = {
        let _running = gate
            .as_ref()
            .map(|g| g.lock().unwrap_or_else(|e| e.into_inner()));
        match gate
            .as_ref()
            .map(|_| inner.lookup(&key, ty, scope.opts.replay_output))
        {
            Some(Err(e)) => Err(e),
            Some(Ok(Some(hit))) => Ok(Err(hit)),
            _ => execute_and_store(scope, task, export, ty, args, &key, &grants, slot).map(Ok),
        }
    };
    inner.ungate(&key, gate);
    let (exec, stored, status) = match result? {
        Ok(executed) => executed,
        Err(hit) => return Ok(answer(hit)),
    };
    finish(status, exec.run, (exec.stdout, exec.stderr));
    Ok(Called {
        value: exec.value,
        cache: status,
        key,
        run: exec.run,
        stored,
    })
}

/// Runs a call that missed and stores its result as the task's policy says.
/// Returns the execution, whether the result was written to the cache, and
/// the call's status: a miss, or uncacheable when it or anything it called
/// was (an impure grant, a writable directory).
#[expect(clippy::too_many_arguments, reason = "one call's full description")]
fn execute_and_store(
    scope: &Scope,
    task: &Task,
    export: &Export,
    ty: &FuncType,
    args: &[Value],
    key: &Digest,
    grants: &Grants,
    slot: usize,
) -> Result<(Execution, bool, CacheStatus)> {
    let inner = &scope.inner;
    let exec = inner.runtime()?.execute(
        task,
        |linker| define_imports(linker, task),
        export,
        ty,
        args,
        key,
        scope.clone(),
        grants,
    )?;
    inputs_unchanged(args)?;
    // What this call made from an uncacheable call is uncacheable too.
    let tainted = !grants.cacheable()
        || scope.trace.lock().expect("poisoned")[slot + 1..]
            .iter()
            .any(|r| r.cache == CacheStatus::Uncacheable);
    let status = if tainted {
        CacheStatus::Uncacheable
    } else {
        CacheStatus::Miss
    };
    let stored = scope.opts.cache != CacheMode::Off && !tainted;
    if stored && task.persist {
        inner.put(key, exec.value.as_ref(), ty, &exec)?;
    } else if stored {
        inner
            .memory
            .lock()
            .expect("poisoned")
            .insert(*key, (exec.value.clone(), exec.run));
    }
    Ok((exec, stored && task.persist, status))
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

impl BlobReader for Inner {
    fn open(&self, blob: &Blob) -> Result<Bytes> {
        if let Some(bytes) = engine::open_uncached(blob) {
            return bytes;
        }
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
