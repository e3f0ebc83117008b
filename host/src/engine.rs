//! The wasmtime side: one engine per host, components compiled once and
//! pre-instantiated, and one fresh store per executed call.
//!
//! Nothing here runs on a cache hit: the [`Runtime`] is created on the first
//! miss.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker, ResourceAny, Val};
use wasmtime::{
    AsContextMut, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreContextMut,
};

use crate::blob::{self, BlobHandle, Bytes};
use crate::codec;
use crate::component::Export;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::flow::Scope;
use crate::sandbox::{Grants, Limits, Sandbox};
use crate::store::Store as CacheStore;
use crate::task::Task;
use crate::types::{FuncType, Type};
use crate::value::{Blob, BlobSource, Value};

/// Opens a blob's bytes for a task to read.
pub(crate) trait BlobReader: Sync {
    /// The bytes of `blob`, verified against its hash where they come from the cache.
    fn open(&self, blob: &Blob) -> Result<Bytes>;
}

/// What one execution produced.
pub(crate) struct Execution {
    pub(crate) value: Option<Value>,
    pub(crate) run: Duration,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// The engine, the linker, and pre-instantiated components by hash.
pub(crate) struct Runtime {
    engine: Engine,
    /// Names the engine's compiled-code compatibility (wasmtime version and
    /// settings): part of every artefact key.
    compat: String,
    linker: Linker<Sandbox>,
    pres: Mutex<HashMap<Digest, InstancePre<Sandbox>>>,
}

/// How often the deadline clock ticks: the resolution of [`Limits::timeout`].
const TICK: Duration = Duration::from_millis(10);

/// How much of a linear memory is reset in place rather than given back to
/// the kernel after a call (see `engine_config`). At most this much stays
/// resident per pool slot (128 memories: 512 MiB at worst, only for slots in
/// use); the tiny calls measured touch ~1 MiB.
const KEEP_RESIDENT: usize = 4 << 20;

fn engine_config(limits: &Limits, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.cranelift_nan_canonicalization(true);
    // Deadline checks cost ~10% in tight loops: compiled in only when a
    // timeout is asked for (the artefact cache keys the two apart).
    config.epoch_interruption(limits.timeout.is_some());
    // Relaxed SIMD must not answer differently on different CPUs.
    config.relaxed_simd_deterministic(true);
    config.consume_fuel(limits.fuel.is_some());
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64);
        pool.total_core_instances(512);
        pool.total_memories(128);
        pool.total_tables(256);
        // Calls run synchronously, never on fibers: the default reserves
        // 1,000 async stacks, which was 1.8 of the 2 ms of creating the
        // engine and most of the 1 ms of dropping it (a new process pays both).
        pool.total_stacks(0);
        pool.max_memory_size(limits.max_memory);
        // Reset memories and tables by memset instead of madvise: madvise
        // changes page tables, and with several threads running calls each
        // change costs a TLB shootdown on every core (perf showed 37% of
        // the time in them on 2 threads). PAGEMAP_SCAN (Linux 6.7+) finds
        // the pages a call dirtied, so only those are reset.
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool.linear_memory_keep_resident(KEEP_RESIDENT);
        pool.table_keep_resident(1 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

impl Runtime {
    /// Creates the engine (pooling allocator, falling back to on-demand
    /// allocation where the machine cannot reserve the pool) and the linker
    /// with WASI and `cairn:task`.
    pub(crate) fn new(limits: &Limits) -> Result<Runtime> {
        let engine = Engine::new(&engine_config(limits, true))
            .or_else(|e| {
                tracing::debug!("pooling allocator unavailable ({e}); allocating on demand");
                Engine::new(&engine_config(limits, false))
            })
            .map_err(|e| Error::internal(format!("cannot create the wasm engine: {e}")))?;
        if limits.timeout.is_some() {
            // The deadline clock: ticks while the engine lives.
            let weak = engine.weak();
            std::thread::Builder::new()
                .name("cairn-epoch".into())
                .spawn(move || {
                    while let Some(engine) = weak.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(TICK);
                    }
                })
                .map_err(|e| Error::internal(format!("cannot start the deadline clock: {e}")))?;
        }
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| {
                blob::add_blobs_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            })
            .map_err(|e| Error::internal(format!("cannot link host interfaces: {e}")))?;
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!(
                "cairn {} engine {:016x}",
                env!("CARGO_PKG_VERSION"),
                h.finish()
            )
        };
        Ok(Runtime {
            compat,
            engine,
            linker,
            pres: Mutex::new(HashMap::new()),
        })
    }

    /// The compiled, linked `task`, compiling it the first time. Keyed by
    /// link id: the same component bound to other tasks links differently.
    fn instance_pre(
        &self,
        task: &Task,
        store: &CacheStore,
        define_imports: impl FnOnce(&mut Linker<Sandbox>) -> wasmtime::Result<()>,
    ) -> Result<InstancePre<Sandbox>> {
        if let Some(pre) = self.pres.lock().expect("poisoned").get(&task.link_id()) {
            return Ok(pre.clone());
        }
        let what = task.name();
        let component = self.compile(task, store)?;
        let mut linker = self.linker.clone();
        define_imports(&mut linker)
            .map_err(|e| Error::internal(format!("cannot link the imports of {what}: {e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("{what} imports something cairn does not provide: {e:#}"),
            )
        })?;
        self.pres
            .lock()
            .expect("poisoned")
            .insert(task.link_id(), pre.clone());
        Ok(pre)
    }

    /// `task` compiled: from the artefact cached for this engine if there is
    /// one (verified by hash), else compiled now and cached.
    fn compile(&self, task: &Task, store: &CacheStore) -> Result<Component> {
        let key = {
            let mut h = blake3::Hasher::new_derive_key("cairn compiled artefact");
            h.update(task.hash().as_bytes());
            h.update(self.compat.as_bytes());
            Digest::from(h.finalize())
        };
        if let Some(bytes) = store.compiled(&key)? {
            // SAFETY: these bytes are what `Component::serialize` produced in a
            // cairn process with a compatible engine; they were verified
            // against the hash recorded in the index when they were written.
            match unsafe { Component::deserialize(&self.engine, &bytes) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::debug!(
                    "cached artefact of {} unusable ({e}); compiling",
                    task.name()
                ),
            }
        }
        let bytes = task.bytes()?;
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, &bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("cannot compile {}: {e:#}", task.name()),
            )
        })?;
        match component.serialize() {
            Ok(artefact) => {
                if let Err(e) = store.put_compiled(&key, &artefact, started.elapsed()) {
                    tracing::warn!("cannot cache the compiled {}: {e}", task.name());
                }
            }
            Err(e) => tracing::debug!("cannot serialize {}: {e}", task.name()),
        }
        Ok(component)
    }

    /// Runs `export` of `task` on `args` in a fresh sandbox seeded by `key`.
    #[expect(clippy::too_many_arguments, reason = "one call's full description")]
    pub(crate) fn execute(
        &self,
        task: &Task,
        define_imports: impl FnOnce(&mut Linker<Sandbox>) -> wasmtime::Result<()>,
        export: &Export,
        ty: &FuncType,
        args: &[Value],
        key: &Digest,
        scope: Scope,
        grants: &Grants,
    ) -> Result<Execution> {
        let what = task.name();
        let pre = self.instance_pre(task, &scope.inner.store, define_imports)?;
        let start = Instant::now();
        let limits = scope.inner.limits.clone();
        let mut store = Store::new(&self.engine, Sandbox::new(key, scope, grants)?);
        store.limiter(|s| &mut s.limits);
        if let Some(timeout) = limits.timeout {
            // At most a century: far enough, and no overflow in the engine.
            let century = 100 * 365 * 24 * 3600 * 1000 / TICK.as_millis() as u64;
            let ticks = u64::try_from(timeout.as_nanos().div_ceil(TICK.as_nanos()))
                .map_or(century, |n| n.min(century));
            store.set_epoch_deadline(ticks);
            store.epoch_deadline_trap();
        }
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
        }
        let fail = |store: &Store<Sandbox>, e| failed(what, export, e, &limits, store.data());
        let instance = pre.instantiate(&mut store).map_err(|e| fail(&store, e))?;
        let func = {
            let iface = match &export.interface {
                Some(i) => Some(
                    instance
                        .get_export_index(&mut store, None, i)
                        .ok_or_else(|| Error::internal(format!("{what} has no instance `{i}`")))?,
                ),
                None => None,
            };
            let idx = instance
                .get_export_index(&mut store, iface.as_ref(), &export.func)
                .ok_or_else(|| {
                    Error::internal(format!("{what} has no export `{}`", export.path()))
                })?;
            instance
                .get_func(&mut store, idx)
                .ok_or_else(|| Error::internal(format!("`{}` is not a function", export.path())))?
        };
        let mut cx = store.as_context_mut();
        let params = args
            .iter()
            .zip(&ty.params)
            .map(|(v, (_, t))| to_val(&mut cx, v, t))
            .collect::<Result<Vec<_>>>()?;
        let mut results = vec![Val::Bool(false); usize::from(ty.result.is_some())];
        if let Err(e) = func.call(&mut cx, &params, &mut results) {
            return Err(fail(&store, e));
        }
        // A full output buffer is a failure even if the task carried on: it
        // saw its writes fail, and a result that depends on the limit must
        // not be cached.
        let (out_len, err_len) = {
            let (o, e) = store.data().output();
            (o.len(), e.len())
        };
        if out_len >= limits.max_output || err_len >= limits.max_output {
            let e = wasmtime::Error::msg("the output limit was reached");
            return Err(failed(what, export, e, &limits, store.data()));
        }
        let mut cx = store.as_context_mut();
        let value = match (results.pop(), &ty.result) {
            (Some(v), Some(t)) => Some(
                from_val(&mut cx, v, t).map_err(|e| Error::internal(format!("{what}: {e:#}")))?,
            ),
            _ => None,
        };
        let (stdout, stderr) = store.data().output();
        Ok(Execution {
            value,
            run: start.elapsed(),
            stdout,
            stderr,
        })
    }
}

/// The error of a call that did not finish, naming the task and, when one
/// was hit, the limit.
fn failed(
    what: &str,
    export: &Export,
    e: wasmtime::Error,
    limits: &Limits,
    sandbox: &Sandbox,
) -> Error {
    // A failure inside a task a flow called: report that task, not the flow.
    let e = match e.downcast::<Error>() {
        Ok(inner) => return inner,
        Err(e) => e,
    };
    let at = export.path();
    let (stdout, stderr) = sandbox.output();
    let msg = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "{what} hit its time limit of {:?} in `{at}` (raise it with --timeout)",
            limits.timeout.unwrap_or_default()
        ),
        Some(wasmtime::Trap::OutOfFuel) => format!(
            "{what} ran out of fuel ({}) in `{at}` (raise it with --fuel)",
            limits.fuel.unwrap_or_default()
        ),
        Some(wasmtime::Trap::StackOverflow) => format!("{what} overflowed its stack in `{at}`"),
        _ if format!("{e:?}").contains("forcing trap when growing memory") => format!(
            "{what} hit its memory limit of {} MiB in `{at}` (raise it with --max-memory)",
            limits.max_memory >> 20
        ),
        _ if stdout.len() >= limits.max_output || stderr.len() >= limits.max_output => format!(
            "{what} wrote more than its output limit of {} KiB to {} in `{at}`",
            limits.max_output >> 10,
            if stdout.len() >= limits.max_output {
                "stdout"
            } else {
                "stderr"
            }
        ),
        Some(trap) => format!("{what} trapped in `{at}`: {trap}"),
        None => format!("{what} failed in `{at}`: {}", e.root_cause()),
    };
    // The guest's own last words (a Rust panic message, say) say most.
    let said = last_words(&stderr)
        .map(|l| format!("; its stderr ends: {l}"))
        .unwrap_or_default();
    Error::new(
        ErrorKind::TaskFailed,
        format!("{msg}{said} (nothing was cached)"),
    )
}

/// The end of what a failed task wrote to stderr, on one line: a Rust panic's
/// `panicked at FILE:LINE:` joined with its message, else the last line.
fn last_words(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let words = match lines.iter().rposition(|l| l.contains(" panicked at ")) {
        Some(i) => {
            let at = &lines[i][lines[i].find("panicked at").expect("found above")..];
            lines
                .get(i + 1)
                .map_or(at.to_string(), |msg| format!("{at} {msg}"))
        }
        None => lines.last()?.to_string(),
    };
    Some(words.chars().take(300).collect())
}

type Cx<'a> = StoreContextMut<'a, Sandbox>;

/// A store-independent value into a `Val` of `store`. Blobs become handles
/// whose bytes are opened only if the task reads them.
pub(crate) fn to_val(store: &mut Cx<'_>, v: &Value, ty: &Type) -> Result<Val> {
    let inner = |store: &mut Cx<'_>, v: &Value, t: &Type| to_val(store, v, t);
    let opt = |store: &mut Cx<'_>,
               v: &Option<Box<Value>>,
               t: Option<&Type>|
     -> Result<Option<Box<Val>>> {
        match (v, t) {
            (Some(v), Some(t)) => Ok(Some(Box::new(to_val(store, v, t)?))),
            _ => Ok(None),
        }
    };
    Ok(match (v, ty) {
        (Value::Bool(x), _) => Val::Bool(*x),
        (Value::S8(x), _) => Val::S8(*x),
        (Value::S16(x), _) => Val::S16(*x),
        (Value::S32(x), _) => Val::S32(*x),
        (Value::S64(x), _) => Val::S64(*x),
        (Value::U8(x), _) => Val::U8(*x),
        (Value::U16(x), _) => Val::U16(*x),
        (Value::U32(x), _) => Val::U32(*x),
        (Value::U64(x), _) => Val::U64(*x),
        (Value::F32(x), _) => Val::Float32(codec::canonical_f32(*x)),
        (Value::F64(x), _) => Val::Float64(codec::canonical_f64(*x)),
        (Value::Char(x), _) => Val::Char(*x),
        (Value::String(x), _) => Val::String(x.clone()),
        (Value::List(vs), Type::List(t)) => Val::List(
            vs.iter()
                .map(|v| inner(store, v, t))
                .collect::<Result<_>>()?,
        ),
        (Value::Record(fs), Type::Record(ts)) => Val::Record(
            fs.iter()
                .zip(ts)
                .map(|((n, v), (_, t))| Ok((n.clone(), inner(store, v, t)?)))
                .collect::<Result<_>>()?,
        ),
        (Value::Tuple(vs), Type::Tuple(ts)) => Val::Tuple(
            vs.iter()
                .zip(ts)
                .map(|(v, t)| inner(store, v, t))
                .collect::<Result<_>>()?,
        ),
        (Value::Variant(c, p), Type::Variant(cases)) => {
            let t = cases
                .iter()
                .find(|(n, _)| n == c)
                .and_then(|(_, t)| t.as_ref());
            Val::Variant(c.clone(), opt(store, p, t)?)
        }
        (Value::Enum(c), _) => Val::Enum(c.clone()),
        (Value::Option(p), Type::Option(t)) => Val::Option(opt(store, p, Some(t))?),
        (Value::Result(r), Type::Result { ok, err }) => Val::Result(match r {
            Ok(p) => Ok(opt(store, p, ok.as_deref())?),
            Err(p) => Err(opt(store, p, err.as_deref())?),
        }),
        (Value::Flags(fs), _) => Val::Flags(fs.clone()),
        (Value::Blob(b), Type::Blob { .. }) => {
            let handle = store
                .data_mut()
                .push_handle(BlobHandle::new(b.clone()))
                .map_err(|e| {
                    Error::new(
                        ErrorKind::TaskFailed,
                        format!("cannot hand a blob to the task: {e}"),
                    )
                })?;
            let any = ResourceAny::try_from_resource(handle, &mut *store)
                .map_err(|e| Error::internal(format!("cannot hand a blob to the task: {e:#}")))?;
            Val::Resource(any)
        }
        (v, t) => {
            return Err(Error::new(
                ErrorKind::BadArguments,
                format!("expected a {t}, got {}", v.to_wave()),
            ))
        }
    })
}

/// A `Val` of `store` into a store-independent value. Owned blob handles are
/// taken out of the store; borrowed ones are looked at.
pub(crate) fn from_val(store: &mut Cx<'_>, v: Val, ty: &Type) -> wasmtime::Result<Value> {
    fn opt(
        store: &mut Cx<'_>,
        v: Option<Box<Val>>,
        t: Option<&Type>,
    ) -> wasmtime::Result<Option<Box<Value>>> {
        match (v, t) {
            (Some(v), Some(t)) => Ok(Some(Box::new(from_val(store, *v, t)?))),
            _ => Ok(None),
        }
    }
    Ok(match (v, ty) {
        (Val::Bool(x), _) => Value::Bool(x),
        (Val::S8(x), _) => Value::S8(x),
        (Val::S16(x), _) => Value::S16(x),
        (Val::S32(x), _) => Value::S32(x),
        (Val::S64(x), _) => Value::S64(x),
        (Val::U8(x), _) => Value::U8(x),
        (Val::U16(x), _) => Value::U16(x),
        (Val::U32(x), _) => Value::U32(x),
        (Val::U64(x), _) => Value::U64(x),
        (Val::Float32(x), _) => Value::F32(codec::canonical_f32(x)),
        (Val::Float64(x), _) => Value::F64(codec::canonical_f64(x)),
        (Val::Char(x), _) => Value::Char(x),
        (Val::String(x), _) => Value::String(x),
        (Val::List(vs), Type::List(t)) => Value::List(
            vs.into_iter()
                .map(|v| from_val(store, v, t))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Record(fs), Type::Record(ts)) => Value::Record(
            fs.into_iter()
                .zip(ts)
                .map(|((n, v), (_, t))| Ok((n, from_val(store, v, t)?)))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Tuple(vs), Type::Tuple(ts)) => Value::Tuple(
            vs.into_iter()
                .zip(ts)
                .map(|(v, t)| from_val(store, v, t))
                .collect::<wasmtime::Result<_>>()?,
        ),
        (Val::Variant(c, p), Type::Variant(cases)) => {
            let t = cases
                .iter()
                .find(|(n, _)| *n == c)
                .and_then(|(_, t)| t.as_ref());
            Value::Variant(c, opt(store, p, t)?)
        }
        (Val::Enum(c), _) => Value::Enum(c),
        (Val::Option(p), Type::Option(t)) => Value::Option(opt(store, p, Some(t))?),
        (Val::Result(r), Type::Result { ok, err }) => Value::Result(match r {
            Ok(p) => Ok(opt(store, p, ok.as_deref())?),
            Err(p) => Err(opt(store, p, err.as_deref())?),
        }),
        (Val::Flags(fs), _) => Value::Flags(fs),
        (Val::Resource(any), Type::Blob { .. }) => {
            let res = any.try_into_resource::<BlobHandle>(&mut *store)?;
            if res.owned() {
                Value::Blob(store.data_mut().table.delete(res)?.blob)
            } else {
                Value::Blob(store.data().table.get(&res)?.blob.clone())
            }
        }
        (v, t) => wasmtime::bail!("the task returned {v:?} where its type says {t}"),
    })
}

/// The bytes of a blob that lives in memory or in a file.
pub(crate) fn open_uncached(blob: &Blob) -> Option<Result<Bytes>> {
    match &blob.source {
        BlobSource::Bytes(b) => Some(Ok(Bytes::Memory(b.clone()))),
        BlobSource::File(path, _) => Some(
            blob::open_file(path)
                .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e)),
        ),
        BlobSource::Stored => None,
    }
}

#[cfg(test)]
mod tests {
    use super::last_words;

    #[test]
    fn last_words_join_a_rust_panic_with_its_message() {
        let panic = b"thread '<unnamed>' panicked at src/lib.rs:86:9:\nthe data is bad\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            last_words(panic).unwrap(),
            "panicked at src/lib.rs:86:9: the data is bad"
        );
        assert_eq!(last_words(b"step 1\nstep 2\n\n").unwrap(), "step 2");
        assert_eq!(last_words(b""), None);
    }
}
