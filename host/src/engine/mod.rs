//! The engine: wasmtime, the sandbox it enforces, and the host functions
//! tasks import. One engine per host, components compiled once and
//! pre-instantiated, and one fresh store per executed call.
//!
//! Nothing here runs on a cache hit: the [`Runtime`] is created on the first
//! miss. The engine knows nothing of caching or flows: what a task reaches
//! beyond its store — the bytes of stored blobs, and calls into the tasks
//! bound to its imports — it asks of the [`Imports`] the call path gives it.
//!
//! Layer: below the call path. May import the local store (compiled
//! artefacts) and the bottom layer (task, values, codec, types, sandbox
//! policy, digest, error); nothing above.

mod blobs;
mod call;
mod convert;
mod deadline;
mod functions;
mod output;
mod sandbox;
mod traps;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use std::sync::Arc;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, InstancePre, Linker, Val};
use wasmtime::{
    AsContextMut, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreContextMut,
};

pub(crate) use self::call::{Call, Execute, Execution, Imports, Pending};
use self::convert::{from_val, to_val};
use self::functions::Functions;
use self::sandbox::Sandbox;
use crate::component::Export;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::sandbox::Limits;
use crate::store::Store as CacheStore;
use crate::task::Task;
use crate::types::FuncType;
use crate::value::Value;

/// The engine, the linker, and pre-instantiated components by hash.
pub(crate) struct Runtime {
    engine: Engine,
    /// Names the engine's compiled-code compatibility (wasmtime version and
    /// settings): part of every artefact key.
    compat: String,
    linker: Linker<Sandbox>,
    /// By link id; a slot is locked while its component compiles, so that
    /// calls starting at once compile it once.
    pres: Mutex<HashMap<Digest, Arc<Mutex<Option<Linked>>>>>,
    limits: Limits,
    /// Where compiled artefacts are kept.
    artefacts: Arc<CacheStore>,
    /// Compiled functions, shared by the components that contain them.
    functions: Arc<Functions>,
}

/// A component compiled and linked, ready to instantiate.
#[derive(Clone)]
struct Linked {
    pre: InstancePre<Sandbox>,
    /// Whether it runs on a fiber under the component model's async ABI:
    /// it imports a task's function as `async` (a flow awaiting several
    /// calls at once) or exports an `async` function.
    concurrent: bool,
}

/// Fiber stacks kept in the pool: one per flow with `async` imports or
/// exports in progress (nested flows each hold one); tasks and plain flows
/// run on the calling thread's stack and need none. Each costs ~3 µs to
/// reserve and release with the engine (1,000 cost 2.9 ms), which every
/// process that executes pays: 64 keep that near 0.2 ms. Past them, a call
/// fails with wasmtime's "maximum concurrent limit … for fibers".
const FIBER_STACKS: u32 = 64;

/// The size of a fiber's stack: as much as a thread's, since a flow's plain
/// calls run the whole call path (and the called task's wasm) on it.
const FIBER_STACK_SIZE: usize = 8 << 20;

/// Component instances alive at once in the pool: tasks executing (at most
/// `--jobs`) plus flows in progress.
const MAX_INSTANCES: u32 = 1000;

/// How much of a linear memory is reset in place rather than given back to
/// the kernel after a call (see `engine_config`). At most this much stays
/// resident per pool slot that has been used (calls reuse the slots their
/// component used before, so about `--jobs` slots per task; flows in
/// progress hold theirs anyway); the tiny calls measured touch ~1 MiB.
const KEEP_RESIDENT: usize = 4 << 20;

fn engine_config(limits: &Limits, pooling: bool, functions: &Arc<Functions>) -> Config {
    let mut config = Config::new();
    // Functions already compiled for another component (a language
    // runtime's, in every task built on it) are not compiled again.
    config
        .enable_incremental_compilation(functions.clone())
        .expect("incremental compilation is compiled in");
    config.wasm_component_model(true);
    // Flows may import a task's functions as `async` and await several
    // calls at once (the component model's async ABI).
    config.wasm_component_model_async(true);
    config.async_stack_size(FIBER_STACK_SIZE);
    // Every float result that is a NaN gets the one canonical bit pattern
    // (0x7ff8…): without it, x86 and Arm make NaNs with other signs and
    // payloads, and a guest that looks at the bits (or stores them in a
    // result) would answer differently per machine under the same key. It
    // costs the float-heavy examples ~2× (BENCHMARKS.md, "The cold run
    // against native"); SIMD guests (`+simd128`) pay it once per vector.
    config.cranelift_nan_canonicalization(true);
    // Deadline checks cost ~10% in tight loops: compiled in only when a
    // timeout is asked for (the artefact cache keys the two apart).
    config.epoch_interruption(limits.timeout.is_some());
    // Relaxed SIMD must not answer differently on different CPUs.
    config.relaxed_simd_deterministic(true);
    config.consume_fuel(limits.fuel.is_some());
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Room for wide fan-outs: only `--jobs` tasks execute at once, but
        // every flow in progress keeps its instance while it waits (a sweep
        // of 500 sets holds 500 sub-flows). The pool reserves address
        // space, not memory; past it, a call fails naming the limit.
        pool.total_component_instances(MAX_INSTANCES);
        pool.total_core_instances(MAX_INSTANCES * 10);
        pool.total_memories(MAX_INSTANCES * 2);
        pool.total_tables(MAX_INSTANCES * 4);
        // Calls run synchronously, except flows with `async` imports, which
        // run on fibers: the default reserves 1,000 async stacks, which was
        // 1.8 of the 2 ms of creating the engine and most of the 1 ms of
        // dropping it (a new process pays both).
        pool.total_stacks(FIBER_STACKS);
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
    /// with WASI and `cairn:task`. Compiled components are kept in
    /// `artefacts`.
    pub(crate) fn new(limits: &Limits, artefacts: Arc<CacheStore>) -> Result<Runtime> {
        let functions = Arc::new(Functions::new(artefacts.clone()));
        let engine = Engine::new(&engine_config(limits, true, &functions))
            .or_else(|e| {
                tracing::debug!("pooling allocator unavailable ({e}); allocating on demand");
                Engine::new(&engine_config(limits, false, &functions))
            })
            .map_err(|e| Error::internal(format!("cannot create the wasm engine: {e}")))?;
        if let Some(timeout) = limits.timeout {
            deadline::start_clock(&engine, deadline::tick(timeout))?;
        }
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| {
                blobs::add_blobs_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
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
        functions.salt(&compat);
        Ok(Runtime {
            compat,
            engine,
            linker,
            pres: Mutex::new(HashMap::new()),
            limits: limits.clone(),
            artefacts,
            functions,
        })
    }

    /// The compiled, linked `task`, compiling it the first time. Keyed by
    /// link id: the same component bound to other tasks links differently.
    fn instance_pre(&self, task: &Task) -> Result<Linked> {
        let slot = self
            .pres
            .lock()
            .expect("poisoned")
            .entry(task.link_id())
            .or_default()
            .clone();
        // A compile that panicked leaves the slot empty, not poisoned for good.
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(linked) = &*slot {
            return Ok(linked.clone());
        }
        let linked = self.link(task)?;
        *slot = Some(linked.clone());
        Ok(linked)
    }

    /// `task` compiled and linked.
    fn link(&self, task: &Task) -> Result<Linked> {
        let what = task.name();
        let component = self.compile(task)?;
        let mut linker = self.linker.clone();
        let deadline = self.limits.timeout.map(deadline::ticks);
        let awaits = define_imports(&mut linker, task, &component, &self.engine, deadline)
            .map_err(|e| Error::internal(format!("cannot link the imports of {what}: {e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("{what} imports something cairn does not provide: {e:#}"),
            )
        })?;
        Ok(Linked {
            pre,
            concurrent: awaits || exports_async(&component, &self.engine),
        })
    }

    /// The key of `task`'s compiled artefact for this engine.
    fn artefact_key(&self, task: &Task) -> Digest {
        let mut h = blake3::Hasher::new_derive_key("cairn compiled artefact");
        h.update(task.hash().as_bytes());
        h.update(self.compat.as_bytes());
        Digest::from(h.finalize())
    }

    /// `task` compiled: from the artefact cached for this engine if there is
    /// one (verified by hash), else compiled now and cached.
    fn compile(&self, task: &Task) -> Result<Component> {
        let store = &self.artefacts;
        let key = self.artefact_key(task);
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
        let before = self.functions.counts();
        let component = {
            // Cranelift looks up every function: one snapshot of the index
            // for all of them rather than a read transaction each.
            let _snapshot = store.hold_snapshot();
            Component::new(&self.engine, &bytes)
        }
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("cannot compile {}: {e:#}", task.name()),
            )
        })?;
        let after = self.functions.counts();
        tracing::debug!(
            "compiled {} in {:?}: {} functions from the cache, {} compiled",
            task.name(),
            started.elapsed(),
            after.hits - before.hits,
            after.compiled - before.compiled,
        );
        if let Err(e) = self.functions.store() {
            tracing::warn!("cannot keep the compiled functions of {}: {e}", task.name());
        }
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
}

impl Execute for Runtime {
    /// Runs `export` of `task` on `args` in a fresh sandbox seeded by `key`.
    fn execute(&self, call: Call<'_>) -> Result<Execution> {
        let Call {
            task,
            export,
            ty,
            args,
            key,
            grants,
            imports,
        } = call;
        let what = task.name();
        let Linked { pre, concurrent } = self.instance_pre(task)?;
        let start = Instant::now();
        let limits = &self.limits;
        let mut store = Store::new(&self.engine, Sandbox::new(key, imports, limits, grants)?);
        store.limiter(|s| &mut s.limits);
        if let Some(timeout) = limits.timeout {
            let ticks = deadline::ticks(timeout);
            store.set_epoch_deadline(ticks);
            store.epoch_deadline_trap();
        }
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
        }
        let mut results = vec![Val::Bool(false); usize::from(ty.result.is_some())];
        let ran = if concurrent {
            // On a fiber, so that the flow can await several calls at once.
            // pollster, not an executor that forbids nesting: a flow's
            // synchronous call may run another concurrent flow on this thread.
            pollster::block_on(async {
                let instance = pre.instantiate_async(&mut store).await?;
                let (func, params) = prepare(&mut store, &instance, what, export, ty, args)?;
                func.call_async(&mut store, &params, &mut results).await
            })
        } else {
            pre.instantiate(&mut store).and_then(|instance| {
                let (func, params) = prepare(&mut store, &instance, what, export, ty, args)?;
                func.call(&mut store, &params, &mut results)
            })
        };
        if let Err(e) = ran {
            return Err(failed(what, export, e, limits, store.data()));
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
            return Err(failed(what, export, e, limits, store.data()));
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

/// The function `export` of `instance` and `args` as its parameters.
fn prepare(
    store: &mut Store<Sandbox>,
    instance: &wasmtime::component::Instance,
    what: &str,
    export: &Export,
    ty: &FuncType,
    args: &[Value],
) -> wasmtime::Result<(Func, Vec<Val>)> {
    let missing = |m: String| wasmtime::Error::new(Error::internal(m));
    let iface = match &export.interface {
        Some(i) => Some(
            instance
                .get_export_index(&mut *store, None, i)
                .ok_or_else(|| missing(format!("{what} has no instance `{i}`")))?,
        ),
        None => None,
    };
    let idx = instance
        .get_export_index(&mut *store, iface.as_ref(), &export.func)
        .ok_or_else(|| missing(format!("{what} has no export `{}`", export.path())))?;
    let func = instance
        .get_func(&mut *store, idx)
        .ok_or_else(|| missing(format!("`{}` is not a function", export.path())))?;
    let mut cx = store.as_context_mut();
    let params = args
        .iter()
        .zip(&ty.params)
        .map(|(v, (_, t))| to_val(&mut cx, v, t))
        .collect::<Result<Vec<_>>>()
        .map_err(wasmtime::Error::new)?;
    Ok((func, params))
}

/// Defines each function of each bound import of `task` as a call through
/// the [`Imports`] of the calling store: the engine links, the call path
/// decides what a call does. A function the flow imports as `async` starts
/// its call and lets the flow go on (it may await several at once); a plain
/// one returns when the call has. Returns whether any was `async`.
///
/// A flow's time limit (`deadline`, in ticks) counts its own execution, not
/// the calls it waits for: each answer gives the flow its whole limit again.
fn define_imports(
    linker: &mut Linker<Sandbox>,
    task: &Task,
    component: &Component,
    engine: &Engine,
    deadline: Option<u64>,
) -> wasmtime::Result<bool> {
    let awaited = awaited_imports(component, engine);
    for (import, child) in task.bound.iter() {
        let mut instance = linker.instance(import)?;
        for export in child
            .exports()
            .iter()
            .filter(|e| e.interface.as_deref() == Some(import.as_str()))
        {
            let Ok(ty) = export.ty.clone() else { continue };
            let ty = Arc::new(ty);
            let child = child.clone();
            let path = Arc::<str>::from(export.path());
            if awaited.contains(&(import.clone(), export.func.clone())) {
                instance.func_new_concurrent(
                    &export.func,
                    move |accessor, _, params, results| {
                        let (child, path, ty) = (child.clone(), path.clone(), ty.clone());
                        Box::pin(async move {
                            let pending = accessor.with(|mut access| {
                                let mut store = access.as_context_mut();
                                let args = args_of(&mut store, params, &ty)?;
                                let imports = store.data().imports.clone();
                                wasmtime::Result::<_>::Ok(imports.start(&child, &path, args))
                            })?;
                            let value = pending.await.map_err(wasmtime::Error::new)?;
                            accessor.with(|mut access| {
                                let mut store = access.as_context_mut();
                                renew(&mut store, deadline);
                                set_result(&mut store, value, &ty, results)
                            })
                        })
                    },
                )?;
            } else {
                instance.func_new(&export.func, move |mut store, _, params, results| {
                    let args = args_of(&mut store, params, &ty)?;
                    let imports = store.data().imports.clone();
                    let value = imports
                        .call(&child, &path, &args)
                        .map_err(wasmtime::Error::new)?;
                    renew(&mut store, deadline);
                    set_result(&mut store, value, &ty, results)
                })?;
            }
        }
    }
    Ok(!awaited.is_empty())
}

/// Gives a flow its whole time limit again, after a call it waited for.
fn renew(store: &mut StoreContextMut<'_, Sandbox>, deadline: Option<u64>) {
    if let Some(ticks) = deadline {
        store.set_epoch_deadline(ticks);
    }
}

/// The parameters of a flow's call, out of the flow's store.
fn args_of(
    store: &mut StoreContextMut<'_, Sandbox>,
    params: &[Val],
    ty: &FuncType,
) -> wasmtime::Result<Vec<Value>> {
    params
        .iter()
        .zip(&ty.params)
        .map(|(v, (_, t))| from_val(store, v.clone(), t))
        .collect()
}

/// The value a flow's call returned, into the flow's store.
fn set_result(
    store: &mut StoreContextMut<'_, Sandbox>,
    value: Option<Value>,
    ty: &FuncType,
    results: &mut [Val],
) -> wasmtime::Result<()> {
    if let (Some(v), Some(t), Some(slot)) = (&value, &ty.result, results.first_mut()) {
        *slot = to_val(store, v, t).map_err(wasmtime::Error::new)?;
    }
    Ok(())
}

/// The functions `component` imports as `async`, as (interface, function).
fn awaited_imports(component: &Component, engine: &Engine) -> HashSet<(String, String)> {
    let mut awaited = HashSet::new();
    for (name, item) in component.component_type().imports(engine) {
        if let ComponentItem::ComponentInstance(instance) = item.ty {
            for (func, item) in instance.exports(engine) {
                if matches!(&item.ty, ComponentItem::ComponentFunc(f) if f.async_()) {
                    awaited.insert((name.to_string(), func.to_string()));
                }
            }
        }
    }
    awaited
}

/// Whether `component` exports an `async` function (it must be called on a
/// fiber).
fn exports_async(component: &Component, engine: &Engine) -> bool {
    let is_async =
        |item: &ComponentItem| matches!(item, ComponentItem::ComponentFunc(f) if f.async_());
    component
        .component_type()
        .exports(engine)
        .any(|(_, item)| match &item.ty {
            ComponentItem::ComponentInstance(i) => i.exports(engine).any(|(_, f)| is_async(&f.ty)),
            other => is_async(other),
        })
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
    tracing::debug!("{what} `{at}` stopped: {e:?}");
    let (stdout, stderr) = sandbox.output();
    let msg = match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "{what} hit its time limit of {:?} in `{at}` (raise it with --timeout, e.g. --timeout 2h, or --timeout none)",
            limits.timeout.unwrap_or_default()
        ),
        Some(wasmtime::Trap::OutOfFuel) => format!(
            "{what} ran out of fuel ({}) in `{at}` (raise it with --fuel)",
            limits.fuel.unwrap_or_default()
        ),
        Some(wasmtime::Trap::StackOverflow) => format!(
            "{what} overflowed its stack in `{at}` (runaway recursion? the engine's wasm stack is 512 KiB)"
        ),
        Some(wasmtime::Trap::MemoryOutOfBounds) if traps::shadow_stack_wrapped(&e) => format!(
            "{what} overflowed its stack in `{at}` (runaway recursion? the stack it keeps in its own memory ran past address 0; its size is set when the task is built: raise it with RUSTFLAGS='-C link-arg=-zstack-size=8388608' or the linker's stack-size option)"
        ),
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

#[cfg(test)]
mod tests {
    use super::{engine_config, last_words};
    use crate::sandbox::Limits;

    /// The canonical NaNs' bits, and a negative signalling NaN with a payload.
    const F64_NAN: u64 = 0x7ff8_0000_0000_0000;
    const F32_NAN: u32 = 0x7fc0_0000;
    const ODD_F64_NAN: u64 = 0xfff4_0000_0000_0001;

    /// A NaN made by arithmetic has the canonical bits on every machine,
    /// scalar or SIMD: x86 makes 0/0 negative (0xfff8…) and passes input
    /// payloads through, so without canonicalisation this fails there.
    #[test]
    fn every_nan_a_float_operation_makes_has_the_canonical_bits() {
        let limits = Limits {
            timeout: None,
            ..Limits::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let host = crate::Host::open(dir.path()).unwrap();
        let functions =
            std::sync::Arc::new(super::functions::Functions::new(host.calls.store.clone()));
        let engine = wasmtime::Engine::new(&engine_config(&limits, false, &functions)).unwrap();
        let wat = r#"(module
          (func (export "div") (param f64 f64) (result i64)
            (i64.reinterpret_f64 (f64.div (local.get 0) (local.get 1))))
          (func (export "add_bits") (param i64 f64) (result i64)
            (i64.reinterpret_f64 (f64.add (f64.reinterpret_i64 (local.get 0)) (local.get 1))))
          (func (export "promote") (param i32) (result i64)
            (i64.reinterpret_f64 (f64.promote_f32 (f32.reinterpret_i32 (local.get 0)))))
          (func (export "f32_sub") (param f32 f32) (result i32)
            (i32.reinterpret_f32 (f32.sub (local.get 0) (local.get 1))))
          (func (export "f64x2_div") (param f64 f64) (result i64 i64)
            (local v128)
            (local.set 2 (f64x2.div (f64x2.splat (local.get 0)) (f64x2.splat (local.get 1))))
            (i64x2.extract_lane 0 (local.get 2))
            (i64x2.extract_lane 1 (local.get 2)))
          (func (export "f32x4_sqrt") (param f32) (result i32 i32)
            (local v128)
            (local.set 1 (f32x4.sqrt (f32x4.splat (local.get 0))))
            (i32x4.extract_lane 0 (local.get 1))
            (i32x4.extract_lane 3 (local.get 1))))"#;
        let module = wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let div = instance
            .get_typed_func::<(f64, f64), u64>(&mut store, "div")
            .unwrap();
        assert_eq!(div.call(&mut store, (0.0, 0.0)).unwrap(), F64_NAN);
        assert_eq!(div.call(&mut store, (1.0, 4.0)).unwrap(), 0.25f64.to_bits());
        let add = instance
            .get_typed_func::<(u64, f64), u64>(&mut store, "add_bits")
            .unwrap();
        assert_eq!(add.call(&mut store, (ODD_F64_NAN, 1.0)).unwrap(), F64_NAN);
        let promote = instance
            .get_typed_func::<u32, u64>(&mut store, "promote")
            .unwrap();
        assert_eq!(promote.call(&mut store, 0xffa0_0001).unwrap(), F64_NAN);
        let sub = instance
            .get_typed_func::<(f32, f32), u32>(&mut store, "f32_sub")
            .unwrap();
        let inf = f32::INFINITY;
        assert_eq!(sub.call(&mut store, (inf, inf)).unwrap(), F32_NAN);
        let div2 = instance
            .get_typed_func::<(f64, f64), (u64, u64)>(&mut store, "f64x2_div")
            .unwrap();
        assert_eq!(
            div2.call(&mut store, (0.0, 0.0)).unwrap(),
            (F64_NAN, F64_NAN)
        );
        let sqrt4 = instance
            .get_typed_func::<f32, (u32, u32)>(&mut store, "f32x4_sqrt")
            .unwrap();
        assert_eq!(sqrt4.call(&mut store, -1.0).unwrap(), (F32_NAN, F32_NAN));
        assert_eq!(
            sqrt4.call(&mut store, 4.0).unwrap(),
            (2.0f32.to_bits(), 2.0f32.to_bits())
        );
    }

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
