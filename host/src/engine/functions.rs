//! Incremental compilation: Cranelift asks this cache for each function it
//! is about to compile, by a key that covers the function's IR, the target
//! and every compiler setting (NaN canonicalisation, fuel, deadlines), and
//! reuses the machine code stored under it. The functions of a language
//! runtime (CPython in every componentize-py task, ~18 MB) are compiled once
//! per cache: editing a task's source, or running another task built with
//! the same runtime, compiles only what differs.
//!
//! Reads go to the store (verified there: a damaged entry is a miss, and
//! the function is compiled again). Functions compiled anew are kept in
//! memory and stored in one commit when the component is done
//! ([`Functions::store`]): one durable write per compile, not per function.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::store::Store;

/// The cache Cranelift reads and fills, on the cairn store.
pub(crate) struct Functions {
    store: Arc<Store>,
    /// The engine's compatibility name, put before every Cranelift key: an
    /// entry is only ever read by the cairn and engine settings that wrote
    /// it, even where Cranelift's own version check could not tell two
    /// builds apart.
    salt: std::sync::OnceLock<Vec<u8>>,
    /// Compiled since the last [`Functions::store`]: (key, code).
    new: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Functions answered from the store, and compiled, so far.
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Functions a compile took from the cache and compiled itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) hits: u64,
    pub(crate) compiled: u64,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("hits", &self.hits)
            .field("misses", &self.misses)
            .finish_non_exhaustive()
    }
}

impl Functions {
    /// An incremental-compilation cache on `store`.
    pub(crate) fn new(store: Arc<Store>) -> Functions {
        Functions {
            store,
            salt: std::sync::OnceLock::new(),
            new: Mutex::new(Vec::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Sets the engine's compatibility name (once, when the engine exists,
    /// before anything compiles).
    pub(crate) fn salt(&self, compat: &str) {
        let _ = self.salt.set(compat.as_bytes().to_vec());
    }

    /// Cranelift's `key`, after the engine's compatibility name.
    fn salted(&self, key: &[u8]) -> Vec<u8> {
        let salt = self.salt.get().map_or(&[][..], Vec::as_slice);
        [salt, b"\0", key].concat()
    }

    /// Hits and misses so far, in this process.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            hits: self.hits.load(Ordering::SeqCst),
            compiled: self.misses.load(Ordering::SeqCst),
        }
    }

    /// Stores the functions compiled since the last call, in one commit.
    /// Losing them only costs compiling them again.
    pub(crate) fn store(&self) -> Result<()> {
        let new = std::mem::take(&mut *self.new.lock().unwrap_or_else(|e| e.into_inner()));
        self.store.put_functions(&new)
    }
}

impl wasmtime::CacheStore for Functions {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let found = self.store.function(&self.salted(key)).unwrap_or_else(|e| {
            tracing::debug!("cannot read a compiled function ({e}); compiling it");
            None
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.new
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.salted(key), value));
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Counts;
    use crate::engine::Runtime;
    use crate::store::Store;
    use crate::task::Task;
    use crate::{Host, Limits, Value};

    /// A task whose `run(n)` is `n * 3 + 7 + bonus`, through a chain of
    /// `shared` helper functions that are the same in every such task (a
    /// language runtime's, in small).
    fn task(host: &Host, bonus: u32, shared: usize) -> Task {
        let helpers: String = (0..shared)
            .map(|i| {
                let next = if i + 1 < shared {
                    format!("(call $h{} (local.get 0))", i + 1)
                } else {
                    "(i32.add (local.get 0) (i32.const 7))".to_string()
                };
                // Some arithmetic that is identical in every copy.
                format!(
                    "(func $h{i} (param i32) (result i32) (local i32) \
                     (local.set 1 (i32.mul (local.get 0) (i32.const 3))) \
                     (if (result i32) (i32.gt_u (local.get 1) (i32.const 1000000)) \
                       (then (local.get 1)) \
                       (else {next})))"
                )
            })
            .collect();
        let wat = format!(
            "(module {helpers} \
               (func (export \"run\") (param i32) (result i32) \
                 (i32.add (call $h0 (i32.mul (local.get 0) (i32.const 3))) (i32.const {bonus}))))"
        );
        let bytes = crate::testing::component(
            "package test:shared;\nworld shared {\n  export run: func(n: u32) -> u32;\n}\n",
            &wat,
        );
        host.load_bytes(&format!("shared-{bonus}"), bytes).unwrap()
    }

    /// Compiles `task` with a new engine on `store` (a new process, as far
    /// as compiling goes): what it took from the function cache, and the
    /// compiled artefact it kept.
    fn compile(store: &Arc<Store>, task: &Task) -> (Counts, Vec<u8>) {
        let runtime = Runtime::new(&Limits::default(), store.clone()).unwrap();
        runtime.compile(task).unwrap();
        let artefact = store.compiled(&runtime.artefact_key(task)).unwrap();
        (runtime.functions.counts(), artefact.unwrap())
    }

    /// The artefact of the `bonus` task compiled in a cache of its own.
    fn uncached(bonus: u32) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(dir.path()).unwrap();
        compile(&host.calls.store, &task(&host, bonus, SHARED)).1
    }

    const SHARED: usize = 40;

    fn run(host: &Host, task: &Task, n: u32) -> Value {
        host.call(task, "run", &[Value::U32(n)])
            .unwrap()
            .value
            .unwrap()
    }

    #[test]
    fn a_second_component_reuses_the_functions_it_shares_for_the_same_code() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(dir.path()).unwrap();
        let store = host.calls.store.clone();
        let (first, second) = (task(&host, 1, SHARED), task(&host, 2, SHARED));

        let (cold, _) = compile(&store, &first);
        assert_eq!(cold.hits, 0, "{cold:?}");
        assert!(cold.compiled > SHARED as u64, "{cold:?}");
        let (warm, artefact) = compile(&store, &second);
        assert!(
            warm.hits >= SHARED as u64,
            "the shared helpers come from the cache: {warm:?}"
        );
        assert!(
            warm.compiled >= 1,
            "`run` differs and is compiled: {warm:?}"
        );
        assert!(warm.compiled < warm.hits, "{warm:?}");

        // Bit for bit the machine code compiled without a cache, and it
        // computes what it should.
        assert!(
            artefact == uncached(2),
            "cached code differs from compiled code"
        );
        assert_eq!(run(&host, &first, 5), Value::U32(5 * 3 + 7 + 1));
        assert_eq!(run(&host, &second, 5), Value::U32(5 * 3 + 7 + 2));
    }

    #[test]
    fn damaged_functions_are_compiled_again_to_the_same_code() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(dir.path()).unwrap();
        let store = host.calls.store.clone();
        let (first, second, third) = (
            task(&host, 1, SHARED),
            task(&host, 2, SHARED),
            task(&host, 3, SHARED),
        );
        compile(&store, &first);
        store.damage_functions().unwrap();

        let (damaged, artefact) = compile(&store, &second);
        assert_eq!(damaged.hits, 0, "no damaged entry is used: {damaged:?}");
        assert!(artefact == uncached(2), "recompiled code differs");
        assert_eq!(run(&host, &second, 4), Value::U32(4 * 3 + 7 + 2));

        // Compiling again rewrote the entries.
        let (repaired, _) = compile(&store, &third);
        assert!(repaired.hits >= SHARED as u64, "{repaired:?}");
    }
}
