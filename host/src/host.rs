//! [`Host`]: a cache directory plus an engine: load components, bind flows,
//! call exports. Every call takes the path in [`crate::flow`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::component::{self, ComponentInfo};
use crate::digest::Digest;
use crate::engine::BlobReader;
use crate::error::{Error, ErrorKind, Result};
use crate::explain::Explanation;
use crate::flow::{self, Inner, Scope};
use crate::remote::{Remote, RemoteConfig, WorkerOptions};
use crate::runs::RunRecord;
use crate::sandbox::{Grants, Limits};
use crate::store::Store;
use crate::task::Task;
use crate::value::{Blob, Value};

/// How a call uses the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// Answer from the cache on a hit; run and store on a miss. The default.
    #[default]
    Use,
    /// Run even if a result is stored, and replace it.
    Refresh,
    /// Run without reading or writing the cache.
    Off,
}

/// Told about each call of a run as it starts and finishes: for progress
/// displays and live logs. Called on the thread making the call.
pub trait Observer: Send + Sync {
    /// A call started (`depth` 0 is the call asked for).
    fn call_started(&self, component: &str, export: &str, depth: u32) {
        let _ = (component, export, depth);
    }

    /// A call finished (hit or executed; a failed call is not reported).
    fn call_finished(&self, call: &CallRecord) {
        let _ = call;
    }
}

/// Options of one call. `CallOptions::default()` uses the cache.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// How the call uses the cache.
    pub cache: CacheMode,
    /// On a hit, also load what the producing run wrote to stdout and stderr
    /// (kept with every stored result). Off by default: it costs reads.
    pub replay_output: bool,
    /// Capabilities granted to the called task (not to the tasks a flow
    /// calls). None by default; each is part of the key.
    pub grants: Grants,
    /// Treat stored results older than this as expired, at every depth (a
    /// task's own `ttl` applies too, whichever is shorter).
    pub ttl: Option<Duration>,
    /// For each call that misses, find the nearest earlier entry for the
    /// same export and say what differs ([`CallRecord::explanation`]).
    pub explain: bool,
    /// Record the run in the cache's history (`cairn runs`, `cairn graph`).
    /// Off by default for library calls: an app making thousands of calls a
    /// second would fill the history with them.
    pub record_run: bool,
    /// Told about each call as it starts and finishes.
    pub observer: Option<Arc<dyn Observer>>,
    /// With a shared tier ([`Host::connect`]): send task calls that miss to
    /// the workers ([`Host::serve`]) instead of executing them here. Flows
    /// still run here (their calls are dispatched), as do calls with grants.
    pub dispatch: bool,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("cache", &self.cache)
            .field("replay_output", &self.replay_output)
            .field("grants", &self.grants)
            .field("ttl", &self.ttl)
            .field("explain", &self.explain)
            .field("record_run", &self.record_run)
            .field("observer", &self.observer.is_some())
            .field("dispatch", &self.dispatch)
            .finish()
    }
}

/// Whether a call was answered from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Answered from the cache: nothing was compiled, instantiated or read.
    Hit,
    /// Executed: no result was stored.
    Miss,
    /// Executed: a result was stored but had outlived its time to live.
    Expired,
    /// Executed and not stored: the call (or a call it made) was impure or
    /// had a writable directory.
    Uncacheable,
}

impl CacheStatus {
    /// `"hit"`, `"miss"`, `"expired"` or `"uncacheable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Expired => "expired",
            CacheStatus::Uncacheable => "uncacheable",
        }
    }
}

/// What happened during a call.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// Hit or miss.
    pub cache: CacheStatus,
    /// The call's key.
    pub key: Digest,
    /// Component instances started by this call and the calls it made (0 on a hit).
    pub executed: u32,
    /// Calls answered from the cache, at any depth (1 on a hit).
    pub hits: u32,
    /// Whether the result was written to the cache.
    pub stored: bool,
    /// Wall time of the whole call.
    pub elapsed: Duration,
    /// Execution time: of this run on a miss, of the run that produced the
    /// result on a hit (the time the hit saved).
    pub run: Duration,
    /// Every call made in this run, the called one first, in the order they
    /// started: a flow's calls into its tasks, and theirs.
    pub calls: Vec<CallRecord>,
}

/// One call made during a run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallRecord {
    /// The called task's name.
    pub component: String,
    /// The export path.
    pub export: String,
    /// The call's key.
    pub key: Digest,
    /// Hit or miss.
    pub cache: CacheStatus,
    /// Wall time of the call, including the calls it made.
    pub elapsed: Duration,
    /// Execution time: of this call on a miss; of the run that produced the
    /// result on a hit (what the hit saved).
    pub run: Duration,
    /// 0 for the called task, 1 for the calls it made, and so on.
    pub depth: u32,
    /// What the task wrote to stdout: on a miss, this run's; on a hit, the
    /// producing run's if [`CallOptions::replay_output`] was set.
    pub stdout: Vec<u8>,
    /// What the task wrote to stderr, likewise.
    pub stderr: Vec<u8>,
    /// Why it missed, when [`CallOptions::explain`] was set.
    pub explanation: Option<Explanation>,
    /// A hit answered by the shared tier (and copied into the local cache).
    pub remote: bool,
    /// The worker that executed it, when it was dispatched.
    pub worker: Option<String>,
    /// When its result expires (ms since the epoch).
    pub(crate) expires_ms: Option<u64>,
}

impl CallRecord {
    /// The record of a call that just started.
    pub(crate) fn started(component: String, export: String, key: Digest, depth: u32) -> Self {
        CallRecord {
            component,
            export,
            key,
            cache: CacheStatus::Miss,
            elapsed: Duration::ZERO,
            run: Duration::ZERO,
            depth,
            stdout: Vec::new(),
            stderr: Vec::new(),
            explanation: None,
            remote: false,
            worker: None,
            expires_ms: None,
        }
    }
}

/// A call's result and report.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The returned value, or `None` for a function without a result.
    pub value: Option<Value>,
    /// What happened.
    pub report: Report,
}

/// Runs components and caches their results in one cache directory.
///
/// Opening a host is cheap: the wasm engine is created on the first call that
/// misses, so a run answered entirely from the cache never creates it. A
/// `Host` may be shared between threads.
pub struct Host {
    pub(crate) inner: Arc<Inner>,
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
        Ok(Host {
            inner: Arc::new(Inner::new(Store::open(dir.as_ref())?, limits)),
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
        self.inner.store.dir()
    }

    /// Bytes read from files to hash them (components and `@file` inputs)
    /// since this host was opened. An unchanged file costs a `stat`, not a read.
    pub fn bytes_hashed(&self) -> u64 {
        self.inner.store.bytes_hashed()
    }

    /// Loads the component at `path`, named after the file. An unchanged file
    /// seen before is not read: its hash and interface come from the cache.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read; [`ErrorKind::NotAComponent`]
    /// or [`ErrorKind::InvalidComponent`] if it is not a valid component.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Task> {
        let path = path.as_ref();
        let (hash, _, _) = self.inner.store.hash_file(path)?;
        let name = path.display().to_string();
        let bytes = Arc::new(OnceLock::new());
        let info = match self.inner.store.component_info(&hash)? {
            Some(info) => info,
            None => {
                let read: Arc<[u8]> = std::fs::read(path)
                    .map_err(|e| Error::io(format_args!("cannot read {name}"), e))?
                    .into();
                if Digest::of(&read) != hash {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("{name} changed while cairn was reading it; run again"),
                    ));
                }
                let info = self.describe(hash, &read, &name)?;
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
        let info = match self.inner.store.component_info(&hash)? {
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

    fn describe(&self, hash: Digest, bytes: &[u8], name: &str) -> Result<ComponentInfo> {
        let info = component::describe(bytes, name)?;
        self.inner.store.put_component_info(&hash, &info)?;
        Ok(info)
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
        flow::bind(flow, tasks, choose)
    }

    /// A blob of the file at `path`, by reference: hashed now (or remembered
    /// by `stat`), read only if a task that receives it runs. The file is not
    /// copied into the cache and must not change while a run uses it.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read.
    pub fn blob_from_file(&self, path: impl AsRef<Path>) -> Result<Blob> {
        let path = path.as_ref();
        let (hash, len, stamp) = self.inner.store.hash_file(path)?;
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
        let bytes = self.inner.open(blob)?;
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
            .inner
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
    pub fn connect(&self, cfg: RemoteConfig) -> Result<bool> {
        if self.inner.remote.get().is_some() {
            return Err(Error::new(
                ErrorKind::BadArguments,
                "this host is already connected to a shared tier",
            ));
        }
        let Some(remote) = Remote::connect(cfg)? else {
            return Ok(false);
        };
        let _ = self.inner.remote.set(remote);
        Ok(true)
    }

    /// Runs as a worker of the connected shared tier: pulls calls that
    /// hosts dispatched, executes them in this host's sandbox and limits,
    /// publishes their results and acknowledges them. Returns after
    /// [`WorkerOptions::max_calls`] calls, or never.
    ///
    /// # Errors
    /// [`ErrorKind::Remote`] if the host is not connected or the work queue
    /// cannot be joined. A call that fails is reported to its sender, not here.
    pub fn serve(&self, opts: &WorkerOptions) -> Result<()> {
        let remote = self.inner.remote.get().ok_or_else(|| {
            Error::new(
                ErrorKind::Remote,
                "a worker needs a shared tier; connect with --remote nats://HOST:PORT",
            )
        })?;
        crate::remote::work::serve(self, remote, opts)
    }

    /// Waits until every result stored so far is committed to the index, so
    /// other processes see it. Results are written in shared commits in the
    /// background (one fsync for many); dropping the host flushes too, but
    /// cannot report a failure.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if a commit failed: the results it held are not
    /// stored (they will be recomputed), nothing stored before is lost.
    pub fn flush(&self) -> Result<()> {
        self.inner.store.flush()
    }

    /// Calls `export` of `task` with `args`, answering from the cache when it can.
    ///
    /// ```no_run
    /// # fn main() -> cairn::Result<()> {
    /// use cairn::{Host, Value};
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
    /// the order of `calls`. Identical calls among them execute once.
    pub fn call_all(
        &self,
        task: &Task,
        calls: &[(String, Vec<Value>)],
        opts: &CallOptions,
        jobs: usize,
    ) -> Vec<Result<Outcome>> {
        let jobs = match jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(calls.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<Outcome>>>> =
            calls.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((export, args)) = calls.get(i) else {
                        break;
                    };
                    let out = self.call_with(task, export, args, opts);
                    *slots[i].lock().expect("poisoned") = Some(out);
                });
            }
        });
        slots
            .into_iter()
            .map(|s| s.into_inner().expect("poisoned").expect("every call ran"))
            .collect()
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
        let scope = Scope::root(self.inner.clone(), opts.clone());
        let called = flow::call(&scope, task, export, args);
        let calls = scope.calls();
        if opts.record_run {
            let error = called.as_ref().err().map(|e| e.to_string());
            self.inner
                .store
                .record_run(RunRecord::of(&calls, start, error));
        }
        let called = called?;
        let count = |c: CacheStatus| calls.iter().filter(|r| r.cache == c).count() as u32;
        Ok(Outcome {
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
        })
    }
}
