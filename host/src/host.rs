//! [`Host`]: a cache directory plus an engine, and the one path every call
//! takes: key → lookup → run on a miss → store → [`Outcome`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::blob::Bytes;
use crate::codec;
use crate::component::{self, ComponentInfo, Export};
use crate::digest::Digest;
use crate::engine::{self, BlobReader, Runtime};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{self, KeyInputs};
use crate::sandbox::Grants;
use crate::store::{Store, INLINE_MAX};
use crate::types::FuncType;
use crate::value::{Blob, BlobSource, Value};

/// A loaded component: its hash and interface. Its bytes are read only when
/// one of its calls misses.
#[derive(Debug, Clone)]
pub struct Task {
    hash: Digest,
    name: String,
    path: Option<PathBuf>,
    bytes: Arc<OnceLock<Arc<[u8]>>>,
    info: Arc<ComponentInfo>,
}

impl Task {
    /// `blake3` of the component's bytes: its identity.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The name used in messages (the path it was loaded from, or the name given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exported functions.
    pub fn exports(&self) -> &[Export] {
        &self.info.exports
    }

    /// The imported interfaces and functions.
    pub fn imports(&self) -> &[String] {
        &self.info.imports
    }

    /// The export `query` names: its full path, its bare function name, or
    /// `interface#func` with the interface's short name. `None` picks the only
    /// export.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownExport`] when nothing or more than one export matches;
    /// the message lists the exports.
    pub fn export(&self, query: Option<&str>) -> Result<&Export> {
        let found: Vec<&Export> = match query {
            Some(q) => self.exports().iter().filter(|e| e.matches(q)).collect(),
            None => self.exports().iter().collect(),
        };
        match (found.as_slice(), query) {
            ([one], _) => Ok(one),
            ([], Some(q)) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "{} has no export `{q}`; it exports: {}",
                    self.name,
                    self.export_list()
                ),
            )),
            ([], None) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!("{} exports no functions; nothing to run", self.name),
            )),
            (_, Some(q)) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "`{q}` could be any of {}; give the full name",
                    found
                        .iter()
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            (_, None) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "{} has {} exports; name one after the component: {}",
                    self.name,
                    found.len(),
                    self.export_list()
                ),
            )),
        }
    }

    fn export_list(&self) -> String {
        let names: Vec<String> = self.exports().iter().map(Export::path).collect();
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    }

    fn bytes(&self) -> Result<Arc<[u8]>> {
        if let Some(b) = self.bytes.get() {
            return Ok(b.clone());
        }
        let path = self
            .path
            .as_ref()
            .ok_or_else(|| Error::internal("a task without bytes or path"))?;
        let bytes: Arc<[u8]> = std::fs::read(path)
            .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e))?
            .into();
        if Digest::of(&bytes) != self.hash {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{} changed while cairn was using it; run again",
                    path.display()
                ),
            ));
        }
        Ok(self.bytes.get_or_init(|| bytes).clone())
    }
}

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

/// Options of one call. `CallOptions::default()` uses the cache.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// How the call uses the cache.
    pub cache: CacheMode,
}

/// Whether a call was answered from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Answered from the cache: nothing was compiled, instantiated or read.
    Hit,
    /// Executed.
    Miss,
}

impl CacheStatus {
    /// `"hit"` or `"miss"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
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
    /// Component instances started by this call (0 on a hit).
    pub executed: u32,
    /// Calls answered from the cache (1 on a hit).
    pub hits: u32,
    /// Whether the result was written to the cache.
    pub stored: bool,
    /// Wall time of the whole call.
    pub elapsed: Duration,
    /// Execution time: of this run on a miss, of the run that produced the
    /// result on a hit (the time the hit saved).
    pub run: Duration,
    /// What the task wrote to stderr (on a miss; empty on a hit).
    pub stderr: Vec<u8>,
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
/// misses, so a run answered entirely from the cache never creates it.
pub struct Host {
    store: Store,
    runtime: OnceLock<Runtime>,
    grants: Grants,
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
        Ok(Host {
            store: Store::open(dir.as_ref())?,
            runtime: OnceLock::new(),
            grants: Grants::default(),
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
        self.store.dir()
    }

    /// Bytes read from files to hash them (components and `@file` inputs)
    /// since this host was opened. An unchanged file costs a `stat`, not a read.
    pub fn bytes_hashed(&self) -> u64 {
        self.store.bytes_hashed()
    }

    /// Loads the component at `path`. An unchanged file seen before is not
    /// read: its hash and interface come from the cache.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read; [`ErrorKind::NotAComponent`]
    /// or [`ErrorKind::InvalidComponent`] if it is not a valid component.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Task> {
        let path = path.as_ref();
        let (hash, _) = self.store.hash_file(path)?;
        let name = path.display().to_string();
        let bytes = Arc::new(OnceLock::new());
        let info = match self.store.component_info(&hash)? {
            Some(info) => info,
            None => {
                let read: Arc<[u8]> = std::fs::read(path)
                    .map_err(|e| Error::io(format_args!("cannot read {name}"), e))?
                    .into();
                let info = self.describe(Digest::of(&read), &read, &name)?;
                let _ = bytes.set(read);
                info
            }
        };
        Ok(Task {
            hash,
            name,
            path: Some(path.to_path_buf()),
            bytes,
            info: Arc::new(info),
        })
    }

    /// Loads a component from memory; `name` is used in messages.
    ///
    /// # Errors
    /// As [`Host::load`].
    pub fn load_bytes(&self, name: &str, bytes: impl Into<Arc<[u8]>>) -> Result<Task> {
        let bytes = bytes.into();
        let hash = Digest::of(&bytes);
        let info = match self.store.component_info(&hash)? {
            Some(info) => info,
            None => self.describe(hash, &bytes, name)?,
        };
        Ok(Task {
            hash,
            name: name.to_string(),
            path: None,
            bytes: Arc::new(OnceLock::from(bytes)),
            info: Arc::new(info),
        })
    }

    fn describe(&self, hash: Digest, bytes: &[u8], name: &str) -> Result<ComponentInfo> {
        let info = component::describe(bytes, name)?;
        self.store.put_component_info(&hash, &info)?;
        Ok(info)
    }

    /// A blob of the file at `path`, by reference: hashed now (or remembered
    /// by `stat`), read only if a task that receives it runs. The file is not
    /// copied into the cache and must not change while a run uses it.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if the file cannot be read.
    pub fn blob_from_file(&self, path: impl AsRef<Path>) -> Result<Blob> {
        let path = path.as_ref();
        let (hash, len) = self.store.hash_file(path)?;
        Ok(Blob::from_file(path, hash, len))
    }

    /// The cache key `export` of `task` would use for `args`, computed without
    /// running or reading anything.
    ///
    /// # Errors
    /// As [`Host::call`], for an unknown export or arguments of the wrong type.
    pub fn key(&self, task: &Task, export: &str, args: &[Value]) -> Result<Digest> {
        let (export, ty) = resolve(task, export)?;
        Ok(self.key_of(task, &export.path(), ty, args)?.0)
    }

    fn key_of(
        &self,
        task: &Task,
        export: &str,
        ty: &FuncType,
        args: &[Value],
    ) -> Result<(Digest, Vec<u8>)> {
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
        let closure = key::closure(task.hash, &[]);
        let key = key::call_key(&KeyInputs {
            closure,
            export,
            func: ty,
            args: &encoded,
            sandbox: self.grants.digest(),
        });
        Ok((key, encoded))
    }

    /// Calls `export` of `task` with `args`, answering from the cache when it can.
    ///
    /// ```no_run
    /// # fn main() -> cairn::Result<()> {
    /// use cairn::{Host, Value};
    /// let host = Host::open("/tmp/cairn-cache")?;
    /// let task = host.load("hello.wasm")?;
    /// let out = host.call(&task, "greet", &[Value::String("Ada".into())])?;
    /// println!("{} ({})", out.value.unwrap().to_wave(), out.report.cache.as_str());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::UnknownExport`], [`ErrorKind::BadArguments`] before
    /// anything runs; [`ErrorKind::TaskFailed`] if the task traps (nothing is
    /// cached); [`ErrorKind::Cache`] or [`ErrorKind::Io`] if the cache cannot
    /// be read or written.
    pub fn call(&self, task: &Task, export: &str, args: &[Value]) -> Result<Outcome> {
        self.call_with(task, export, args, &CallOptions::default())
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
        let (export, ty) = resolve(task, export)?;
        let path = export.path();
        let (key, _) = self.key_of(task, &path, ty, args)?;
        if opts.cache == CacheMode::Use {
            if let Some((value, run)) = self.lookup(&key, ty)? {
                return Ok(Outcome {
                    value,
                    report: Report {
                        cache: CacheStatus::Hit,
                        key,
                        executed: 0,
                        hits: 1,
                        stored: false,
                        elapsed: start.elapsed(),
                        run,
                        stderr: Vec::new(),
                    },
                });
            }
        }
        let runtime = match self.runtime.get() {
            Some(r) => r,
            None => {
                let r = Runtime::new()?;
                self.runtime.get_or_init(|| r)
            }
        };
        let exec = runtime.execute(
            task.hash,
            &task.name,
            || task.bytes(),
            export,
            ty,
            args,
            &key,
            self,
        )?;
        let stored = opts.cache != CacheMode::Off;
        if stored {
            self.put(&key, exec.value.as_ref(), ty, exec.run)?;
        }
        Ok(Outcome {
            value: exec.value,
            report: Report {
                cache: CacheStatus::Miss,
                key,
                executed: 1,
                hits: 0,
                stored,
                elapsed: start.elapsed(),
                run: exec.run,
                stderr: exec.stderr,
            },
        })
    }

    /// The stored result of `key`, decoded; `None` on a miss or when the
    /// stored value is missing or damaged (then the call runs and repairs it).
    fn lookup(&self, key: &Digest, ty: &FuncType) -> Result<Option<(Option<Value>, Duration)>> {
        let Some(record) = self.store.result(key)? else {
            return Ok(None);
        };
        let Some(bytes) = self.store.object(&record.value, record.value_len)? else {
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
        Ok(Some((value, Duration::from_micros(record.run_us))))
    }

    fn put(&self, key: &Digest, value: Option<&Value>, ty: &FuncType, run: Duration) -> Result<()> {
        let (encoded, blobs) = match (value, &ty.result) {
            (Some(v), Some(t)) => {
                let encoded = codec::to_bytes(v, t)
                    .map_err(|e| Error::internal(format!("result does not encode: {e}")))?;
                (encoded, self.result_blobs(v)?)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        self.store.put_result(key, &encoded, &refs, run)
    }

    /// The content of every blob in a result that the cache does not hold yet.
    fn result_blobs(&self, v: &Value) -> Result<Vec<Arc<[u8]>>> {
        let mut out = Vec::new();
        let mut err = None;
        v.for_each_blob(&mut |b: &Blob| match &b.source {
            BlobSource::Bytes(bytes) => out.push(bytes.clone()),
            BlobSource::File(path) => match std::fs::read(path) {
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
}

impl BlobReader for Host {
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
                return Err(missing());
            }
            return crate::blob::map_file(&path).map_err(|_| missing());
        }
        let bytes = self
            .store
            .object(&blob.hash(), blob.len())?
            .ok_or_else(missing)?;
        Ok(Bytes::Memory(bytes.into()))
    }
}

pub(crate) fn resolve<'t>(task: &'t Task, query: &str) -> Result<(&'t Export, &'t FuncType)> {
    let export = task.export(Some(query))?;
    let ty = export.ty.as_ref().map_err(|why| {
        Error::new(
            ErrorKind::InvalidComponent,
            format!("cannot call `{}` of {}: {why}", export.path(), task.name),
        )
    })?;
    Ok((export, ty))
}
