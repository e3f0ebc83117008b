//! [`Host`], the façade: a cache directory plus an engine: load components,
//! bind flows, call exports. Every call takes the call path
//! (`call_path/`); the cache's administration (`cache.rs`, `gc.rs`), the
//! `cairn.toml` manifest (`manifest.rs`), argument parsing (`args.rs`) and
//! the worker (`worker.rs`) add to `Host` in their own modules.
//!
//! Layer: the top of the library. May import anything below it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::call_path::{spawn, CallPath};
use crate::clock::{Clock, SystemClock};
use crate::component::{self, Interface};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::report::{CacheStatus, CallOptions, Outcome, Report};
use crate::runs::{RunCall, RunRecord};
use crate::sandbox::{Grants, Limits};
use crate::store::Store;
use crate::task::Task;
use crate::value::{Blob, Value};
#[cfg(feature = "remote")]
use crate::{
    remote::{Remote, RemoteConfig},
    tier::shared::{Published, SharedTier},
};

/// Runs components and caches their results in one cache directory.
///
/// Opening a host is cheap: the wasm engine is created on the first call that
/// misses, so a run answered entirely from the cache never creates it. A
/// `Host` may be shared between threads, and cloning one is cheap: clones
/// share the cache, the engine and the connection.
///
/// Calls block the calling thread; async applications use
/// [`Host::call_async`] (and [`Host::connect_async`]), which run them on
/// threads of their own under any executor.
#[derive(Clone)]
pub struct Host {
    /// The call path every call takes, with the tiers and the engine.
    pub(crate) calls: Arc<CallPath>,
    /// The shared tier, once connected.
    #[cfg(feature = "remote")]
    pub(crate) shared: Arc<OnceLock<Arc<SharedTier>>>,
}

impl Host {
    /// Opens the cache in `dir`, creating it if needed. Many processes may
    /// open one cache directory at once.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the directory cannot be created;
    /// [`ErrorKind::Cache`] if its index is damaged, of another format, or
    /// already open in this process.
    pub fn open(dir: impl AsRef<Path>) -> Result<Host> {
        Host::open_with(dir, Limits::default())
    }

    /// [`Host::open`], with the limits every call of this host runs under.
    ///
    /// # Errors
    /// As [`Host::open`].
    pub fn open_with(dir: impl AsRef<Path>, limits: Limits) -> Result<Host> {
        Host::open_with_clock(dir, limits, Arc::new(SystemClock))
    }

    /// [`Host::open_with`], keeping the cache's time by `clock`: when
    /// results are made, used and expire (tasks never see it). Tests set
    /// the time with a [`crate::clock::ManualClock`] instead of waiting.
    ///
    /// # Errors
    /// As [`Host::open`].
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        limits: Limits,
        clock: Arc<dyn Clock>,
    ) -> Result<Host> {
        Ok(Host {
            calls: Arc::new(CallPath::new(Store::open(dir.as_ref(), clock)?, limits)),
            #[cfg(feature = "remote")]
            shared: Arc::default(),
        })
    }

    /// The cache directory: `$CAIRN_CACHE_DIR` if set, else the user's cache
    /// directory (`$XDG_CACHE_HOME/cairn`, `~/.cache/cairn`), so every flow
    /// on the machine shares one cache.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("CAIRN_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(dir.into());
        }
        directories::ProjectDirs::from("", "", "cairn").map(|d| d.cache_dir().to_path_buf())
    }

    /// The cache directory this host uses.
    pub fn cache_dir(&self) -> &Path {
        self.calls.store.dir()
    }

    /// Bytes read from files to hash them (components and `@file` inputs)
    /// since this host was opened. An unchanged file costs a `stat`, not a read.
    pub fn bytes_hashed(&self) -> u64 {
        self.calls.store.bytes_hashed()
    }

    /// A handle on this host's input and output counters (bytes hashed,
    /// bytes of blobs read by tasks), for a progress display on another
    /// thread.
    pub fn io_meter(&self) -> IoMeter {
        IoMeter {
            store: self.calls.store.clone(),
        }
    }

    /// Loads the component at `path`, named after the file. An unchanged file
    /// seen before is not read: its hash and interface come from the cache.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read; [`ErrorKind::NotAComponent`]
    /// or [`ErrorKind::InvalidComponent`] if it is not a valid component.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Task> {
        let path = path.as_ref();
        self.load_named(path, path.display().to_string())
    }

    /// [`Host::load`], the task named `name` (messages name the file).
    pub(crate) fn load_named(&self, path: &Path, name: String) -> Result<Task> {
        let (hash, _, _) = self.calls.store.hash_file(path)?;
        let bytes = Arc::new(OnceLock::new());
        let info = match self.calls.store.component_info(&hash)? {
            Some(info) => info,
            None => {
                let file = path.display().to_string();
                let read: Arc<[u8]> = std::fs::read(path)
                    .map_err(|e| Error::io(format_args!("cannot read {file}"), e))?
                    .into();
                if Digest::of(&read) != hash {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("{file} changed while cairn was reading it; run again"),
                    ));
                }
                let info = self.describe(hash, &read, &file)?;
                let _ = bytes.set(read);
                info
            }
        };
        Ok(Task::new(hash, name, Some(path.to_path_buf()), bytes, info))
    }

    /// Loads a component from memory; `name` is used in messages.
    ///
    /// # Errors
    /// As [`Host::load`].
    pub fn load_bytes(&self, name: &str, bytes: impl Into<Arc<[u8]>>) -> Result<Task> {
        let bytes = bytes.into();
        let hash = Digest::of(&bytes);
        let info = match self.calls.store.component_info(&hash)? {
            Some(info) => info,
            None => self.describe(hash, &bytes, name)?,
        };
        Ok(Task::new(
            hash,
            name.to_string(),
            None,
            Arc::new(OnceLock::from(bytes)),
            info,
        ))
    }

    fn describe(&self, hash: Digest, bytes: &[u8], name: &str) -> Result<Interface> {
        let info = component::describe(bytes, name)?;
        self.calls.store.put_component_info(&hash, &info)?;
        Ok(info.into())
    }

    /// Binds the imports of `flow` to the tasks in `tasks` that export them,
    /// recursively (a bound task may itself be a flow), and returns the bound
    /// flow. Imports of WASI and `cairn:task` are the host's. `choose` maps an
    /// import to the name of the task to use where several export it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidComponent`] naming the interface when an import has
    /// no provider or several, or when flows import each other in a cycle.
    pub fn bind(&self, flow: &Task, tasks: &[Task], choose: &[(String, String)]) -> Result<Task> {
        crate::bind::bind(flow, tasks, choose)
    }

    /// A blob of the file at `path`, by reference: hashed now (or remembered
    /// by `stat`), read only if a task that receives it runs. The file is not
    /// copied into the cache and must not change while a run uses it.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read.
    pub fn blob_from_file(&self, path: impl AsRef<Path>) -> Result<Blob> {
        let path = path.as_ref();
        let (hash, len, stamp) = self.calls.store.hash_file(path)?;
        Ok(Blob::from_file(path, hash, len, stamp))
    }

    /// Writes the content of `blob` to the file `path` (verified against its
    /// hash when it comes from the cache), so results are usable outside cairn.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the blob is no longer in the cache;
    /// [`ErrorKind::Io`] if the file cannot be written.
    pub fn write_blob(&self, blob: &Blob, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.calls.open_blob(blob)?;
        let content = bytes
            .read(0, bytes.len())
            .map_err(|e| Error::io(format_args!("cannot read blob {}", blob.hash()), e))?;
        std::fs::write(path, content)
            .map_err(|e| Error::io(format_args!("cannot write {}", path.display()), e))
    }

    /// The cache key `export` of `task` would use for `args`, computed without
    /// running or reading anything.
    ///
    /// # Errors
    /// As [`Host::call`], for an unknown export or arguments of the wrong type.
    pub fn key(&self, task: &Task, export: &str, args: &[Value]) -> Result<Digest> {
        let (export, ty) = task.resolve(export)?;
        let grants = Grants {
            impure: task.impure(),
            ..Grants::default()
        };
        Ok(self
            .calls
            .key_of(task, &export.path(), ty, args, &grants)?
            .key)
    }

    /// Connects this host to a shared tier on NATS JetStream: lookups that
    /// miss locally ask it (and copy its hits into the local cache), new
    /// results are published to it, a key missing everywhere is executed by
    /// one machine at a time, and [`CallOptions::dispatch`] sends calls to
    /// workers. Returns `false` when the server cannot be reached and
    /// [`RemoteConfig::optional`] lets the host go on with its local cache.
    ///
    /// # Errors
    /// [`ErrorKind::Remote`] if the server cannot be reached (and the tier is
    /// not optional); [`ErrorKind::BadArguments`] if this host is already
    /// connected.
    #[cfg(feature = "remote")]
    pub fn connect(&self, cfg: RemoteConfig) -> Result<bool> {
        self.connect_on(cfg, None)
    }

    /// [`Host::connect`], the NATS client on `runtime` if given, else on a
    /// runtime of its own.
    #[cfg(feature = "remote")]
    fn connect_on(
        &self,
        cfg: RemoteConfig,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<bool> {
        let already = || {
            Error::new(
                ErrorKind::BadArguments,
                "this host is already connected to a shared tier",
            )
        };
        if self.shared.get().is_some() {
            return Err(already());
        }
        let Some(remote) = Remote::connect(cfg, runtime)? else {
            return Ok(false);
        };
        let tier = Arc::new(SharedTier::new(remote, self.calls.store.clone()));
        // The host's handle first: of two threads connecting at once, one
        // wins both, so lookups and the worker use the same connection.
        self.shared.set(tier.clone()).map_err(|_| already())?;
        if !self.calls.connect(tier.clone(), tier) {
            return Err(already());
        }
        Ok(true)
    }

    /// [`Host::connect`] for async applications: connects on a thread of its
    /// own, and the NATS client then runs on the caller's tokio runtime
    /// rather than on one of its own. That runtime must have its time and IO
    /// drivers enabled and outlive the host, and the host's calls must then
    /// not block its threads ([`Host::call_async`] does not).
    ///
    /// # Errors
    /// As [`Host::connect`].
    #[cfg(feature = "remote")]
    pub fn connect_async(
        &self,
        cfg: RemoteConfig,
    ) -> impl std::future::Future<Output = Result<bool>> + Send + 'static {
        let host = self.clone();
        let runtime = tokio::runtime::Handle::try_current().ok();
        spawn(move || host.connect_on(cfg, runtime))
    }

    /// Results of this host's calls that were computed and stored locally
    /// but could not be published, because the shared tier failed while
    /// publishing them: each key with what went wrong. After such a failure
    /// the host goes on with the local cache only; `Host::publish` (`cairn
    /// cache push`) publishes them later. Empty without a shared tier.
    #[cfg(feature = "remote")]
    pub fn unpublished(&self) -> Vec<(Digest, String)> {
        self.shared
            .get()
            .map(|t| t.unpublished())
            .unwrap_or_default()
    }

    /// The shared tier, or the error saying `what` needs one.
    #[cfg(feature = "remote")]
    pub(crate) fn shared(&self, what: &str) -> Result<&Arc<SharedTier>> {
        self.shared.get().ok_or_else(|| {
            Error::new(
                ErrorKind::Remote,
                format!("{what} needs a shared tier; connect with --remote nats://HOST:PORT"),
            )
        })
    }

    /// Publishes local entries to the connected shared tier, as if they had
    /// just been computed: for results stored before the host used the tier
    /// (or while it was down), which other machines would otherwise compute
    /// again. Entries the tier already holds are left alone; expired ones
    /// are skipped.
    ///
    /// # Errors
    /// [`ErrorKind::Remote`] if the host is not connected or the tier fails;
    /// [`ErrorKind::Cache`] if an entry's objects cannot be read. What was
    /// published before the error stays published.
    #[cfg(feature = "remote")]
    pub fn publish(&self, keys: &[Digest]) -> Result<Published> {
        self.shared("publishing")?.publish(keys)
    }

    /// Waits until every result stored so far is committed to the index, so
    /// other processes see it. Results are written in shared commits in the
    /// background (one fsync for many), within a second of being stored
    /// (compiled code within ten) if nothing flushes sooner; dropping the
    /// last clone of the host flushes too, but cannot report a failure, and
    /// a call still running (an abandoned [`Host::call_async`], a flow's
    /// call) holds a clone until it ends: call this before exiting.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if a commit failed: the results it held are not
    /// stored (they will be recomputed), nothing stored before is lost.
    pub fn flush(&self) -> Result<()> {
        self.calls.store.flush()
    }

    /// [`Host::flush`] for every host open in this process, waiting at most
    /// `within`: for a process about to end without dropping them (a Ctrl-C
    /// handler), so that what calls finished meanwhile (and what was
    /// compiled) stays. Failures are logged. Returns whether it was all
    /// done in time.
    pub fn flush_all(within: std::time::Duration) -> bool {
        crate::store::flush_all(within)
    }

    /// Calls `export` of `task` with `args`, answering from the cache when it can.
    ///
    /// ```no_run
    /// # fn main() -> cairn_host::Result<()> {
    /// use cairn_host::{Host, Value};
    /// let host = Host::open("/tmp/cairn-cache")?;
    /// let task = host.load("hello.wasm")?;
    /// let out = host.call(&task, "greet", &[Value::String("Ada".into()), Value::Bool(false)])?;
    /// println!("{} ({})", out.value.unwrap().to_wave(), out.report.cache.as_str());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::UnknownExport`], [`ErrorKind::BadArguments`] before
    /// anything runs; [`ErrorKind::TaskFailed`] if the task (or a task a flow
    /// calls) traps (nothing is cached); [`ErrorKind::Cache`] or
    /// [`ErrorKind::Io`] if the cache cannot be read or written.
    pub fn call(&self, task: &Task, export: &str, args: &[Value]) -> Result<Outcome> {
        self.call_with(task, export, args, &CallOptions::default())
    }

    /// Calls `task` once for each `(export, arguments)` in `calls`, on up to
    /// `jobs` threads at once (0: one per core), and returns the outcomes in
    /// the order of `calls`. Identical calls among them execute once. The
    /// calls see the cache as it was when they began, plus what they store:
    /// a result another process stores meanwhile is not a hit until the
    /// next batch. With [`CallOptions::record_run`], the batch is recorded
    /// as one run whose top-level calls are the batch's, in order.
    pub fn call_all(
        &self,
        task: &Task,
        calls: &[(String, Vec<Value>)],
        opts: &CallOptions,
        jobs: usize,
    ) -> Vec<Result<Outcome>> {
        let start = Instant::now();
        let jobs = crate::sandbox::jobs_or_cores(jobs).min(calls.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        type Slot = std::sync::Mutex<Option<(Result<Outcome>, Vec<RunCall>)>>;
        let slots: Vec<Slot> = calls.iter().map(|_| Slot::new(None)).collect();
        let _snapshot = self.calls.store.hold_snapshot();
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((export, args)) = calls.get(i) else {
                        break;
                    };
                    let out = self.call_traced(task, export, args, opts, start);
                    *slots[i].lock().expect("poisoned") = Some(out);
                });
            }
        });
        let (outcomes, trees): (Vec<_>, Vec<_>) = slots
            .into_iter()
            .map(|s| s.into_inner().expect("poisoned").expect("every call ran"))
            .unzip();
        if opts.record_run {
            // One run for the whole batch: a record per call cost a batch of
            // hits as much as the calls themselves.
            let failed: Vec<&Error> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
            let error = failed
                .first()
                .map(|e| match (failed.len(), outcomes.len()) {
                    (1, 1) => e.to_string(),
                    (n, m) => format!("{n} of {m} calls failed; the first: {e}"),
                });
            let now = self.calls.store.now_ms();
            let run = RunRecord::of_trees(trees, start, error, now);
            self.calls.store.record_run(run);
        }
        outcomes
    }

    /// [`Host::call_with`] for async applications: the call runs on a thread
    /// of its own (it computes: wasm, hashing, reading inputs) and the future
    /// is ready when it ends. It needs no particular executor and starts no
    /// runtime; many calls may be in flight on one host at once, and
    /// identical ones execute once.
    ///
    /// ```no_run
    /// # async fn f() -> cairn_host::Result<()> {
    /// use cairn_host::{CallOptions, Host, Value};
    /// let host = Host::open("/tmp/cairn-cache")?;
    /// let task = host.load("hello.wasm")?;
    /// let args = [Value::String("Ada".into()), Value::Bool(false)];
    /// let out = host.call_async(&task, "greet", &args, &CallOptions::default()).await?;
    /// println!("{}", out.value.unwrap().to_wave());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Host::call`].
    pub fn call_async(
        &self,
        task: &Task,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
    ) -> impl std::future::Future<Output = Result<Outcome>> + Send + 'static {
        let (host, task, export) = (self.clone(), task.clone(), export.to_owned());
        let (args, opts) = (args.to_vec(), opts.clone());
        spawn(move || host.call_with(&task, &export, &args, &opts))
    }

    /// [`Host::call`] with options.
    ///
    /// # Errors
    /// As [`Host::call`].
    pub fn call_with(
        &self,
        task: &Task,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
    ) -> Result<Outcome> {
        let start = Instant::now();
        let (out, tree) = self.call_traced(task, export, args, opts, start);
        if opts.record_run {
            let error = out.as_ref().err().map(|e| e.to_string());
            let now = self.calls.store.now_ms();
            let run = RunRecord::of_trees([tree], start, error, now);
            self.calls.store.record_run(run);
        }
        out
    }

    /// [`Host::call_with`], without recording a run: its outcome, and, if
    /// `opts.record_run`, its calls as a run that started at `origin`
    /// records them.
    fn call_traced(
        &self,
        task: &Task,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
        origin: Instant,
    ) -> (Result<Outcome>, Vec<RunCall>) {
        let start = Instant::now();
        let (called, calls) = self.calls.run(task, export, args, opts, true);
        let tree = match opts.record_run {
            true => RunCall::tree(&calls, (start - origin).as_micros() as u64),
            false => Vec::new(),
        };
        let called = match called {
            Ok(called) => called,
            Err(e) => return (Err(e), tree),
        };
        let count = |c: CacheStatus| calls.iter().filter(|r| r.cache == c).count() as u32;
        let outcome = Outcome {
            value: called.value,
            report: Report {
                cache: called.cache,
                key: called.key,
                executed: count(CacheStatus::Miss) + count(CacheStatus::Uncacheable),
                hits: count(CacheStatus::Hit),
                stored: called.stored,
                elapsed: start.elapsed(),
                run: called.run,
                calls,
            },
        };
        (Ok(outcome), tree)
    }
}

/// Counts what a [`Host`] reads, readable from any thread while calls run
/// ([`Host::io_meter`]).
#[derive(Clone)]
pub struct IoMeter {
    store: Arc<Store>,
}

impl IoMeter {
    /// Bytes read from files to hash them since the host was opened.
    pub fn bytes_hashed(&self) -> u64 {
        self.store.bytes_hashed()
    }

    /// Bytes of blobs tasks have read since the host was opened.
    pub fn bytes_read(&self) -> u64 {
        self.store.bytes_read()
    }
}

impl std::fmt::Debug for IoMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoMeter")
            .field("bytes_hashed", &self.bytes_hashed())
            .field("bytes_read", &self.bytes_read())
            .finish()
    }
}
