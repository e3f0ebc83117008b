//! The cache on disk: a redb index plus a content-addressed object store.
//!
//! Layout of a cache directory:
//!
//! ```text
//! index.redb            results, small objects, the stat cache, component
//!                       interfaces, closures, hit counts, run history,
//!                       compiled functions (shared by components)
//! objects/ab/cdef…      objects over 64 KiB, named by their blake3 hash
//! compiled/KEY.cwasm    compiled components, by component hash and engine
//! stats.v2.log          hit counts and runs not yet in the index (unsynced)
//! config.toml           optional settings (a size budget)
//! ```
//!
//! Every object read is verified against its hash; a mismatch is a miss, and
//! the damaged object is dropped so the next run repairs it. Writes go object
//! first (files written to a temporary name, synced, then renamed; the
//! directories renamed into synced before the commit), index last, in one
//! transaction: a crash never leaves a key pointing at a missing value. Many
//! processes may use one cache at once (redb's multi-writer mode); each
//! write transaction is short, and a run's writes are grouped into one
//! commit (see [`commit`]), which other processes see when it lands. A run
//! that writes nothing but statistics (a hit) opens the index read-only and
//! syncs nothing: hit counts and its run record go to a log that the next
//! commit folds in (see [`index`], [`stats`]).
//!
//! Layer: a store, beside the shared tier's client (`remote/`). Imports
//! only the bottom layer.

mod batch;
mod catalog;
mod commit;
mod functions;
mod hot;
mod index;
mod record;
mod stats;
mod tables;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{ConcurrencyMode, Database, TableHandle};

pub(crate) use catalog::Listed;
pub(crate) use commit::flush_all;
pub(crate) use record::ResultRecord;

use crate::bytes::FileStamp;
use crate::clock::Clock;
use crate::component::{ComponentInfo, Interface};
use crate::digest::Digest;
use crate::entry::{ClosureNode, KeyManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::runs::RunRecord;
use commit::Queue;
use index::{damaged, open_error, Index, Redb};
use record::{CompiledRecord, StatEntry};
use tables::*;

/// The on-disk format this build reads and writes. Format 1 (before hit
/// counts, manifests and run history) is upgraded in place: its results are
/// dropped and recomputed when next called. Format 2 (JSON key manifests)
/// is upgraded by name only: its records are still read.
pub const FORMAT_VERSION: u64 = 3;
/// Objects up to this size live in the index; larger ones are files.
pub const INLINE_MAX: usize = 64 * 1024;
/// A file modified this recently is hashed but not remembered: a second write
/// within the file system's timestamp granularity could go unseen.
const RACY_WINDOW: Duration = Duration::from_millis(100);

/// What a run wrote to stdout and stderr.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Output<'a> {
    pub(crate) stdout: &'a [u8],
    pub(crate) stderr: &'a [u8],
}

/// A result to store, and everything it names.
pub(crate) struct NewEntry<'a> {
    pub(crate) key: Digest,
    /// The canonical encoding of the value.
    pub(crate) value: &'a [u8],
    /// Blobs inside the value that the cache does not hold yet.
    pub(crate) blobs: &'a [&'a [u8]],
    pub(crate) run: Duration,
    pub(crate) output: Output<'a>,
    pub(crate) expires_ms: Option<u64>,
    pub(crate) manifest: &'a KeyManifest,
    /// The canonical encoding of the arguments.
    pub(crate) args: &'a [u8],
    /// The closure tree of the called task, each node with its component's
    /// bytes (read only if the cache does not hold them yet).
    pub(crate) closures: Vec<(Digest, ClosureNode, &'a crate::task::Task)>,
}

/// The cache directory: index and objects.
pub(crate) struct Store {
    index: Arc<Index>,
    dir: PathBuf,
    /// Bytes read from input files to hash them, since this store was opened.
    hashed: AtomicU64,
    /// Bytes of blobs tasks read, since this store was opened.
    read: AtomicU64,
    /// Writes waiting for a shared commit.
    queue: Queue,
    /// Closures this process has stored (with their components' bytes).
    known_closures: Mutex<HashSet<Digest>>,
    /// Results read or written lately, for hits without a read transaction.
    hot: hot::HotResults,
    /// The time entries are made, used and expire at.
    clock: Arc<dyn Clock>,
}

impl Store {
    /// Opens (creating if needed) the cache in `dir`, keeping time by `clock`.
    pub(crate) fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<Store> {
        Store::open_with(dir, clock, Queue::start)
    }

    fn open_with(
        dir: &Path,
        clock: Arc<dyn Clock>,
        queue: impl FnOnce(Arc<Index>) -> Queue,
    ) -> Result<Store> {
        let index = Arc::new(Index::open(dir)?);
        let store = Store {
            queue: queue(index.clone()),
            index,
            dir: dir.to_path_buf(),
            hashed: AtomicU64::new(0),
            read: AtomicU64::new(0),
            known_closures: Mutex::default(),
            hot: hot::HotResults::default(),
            clock,
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        let found = self.read(|tx| match tx.open_table(META) {
            Ok(meta) => Ok(meta.get("format")?.map(|v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })?;
        match found {
            Some(FORMAT_VERSION) => Ok(()),
            // Format 2 differs only in how new records are written (layout 3,
            // which this cairn still reads): it upgrades by name, so that an
            // older cairn refuses the cache instead of collecting what it
            // cannot read.
            None | Some(1) | Some(2) => self.write(|tx| {
                if found == Some(1) {
                    tracing::info!(
                        "upgrading the cache from format 1: earlier results will be recomputed"
                    );
                    for table in ["results", "compiled"] {
                        if tx.list_tables()?.any(|t| t.name() == table) {
                            let def: redb::TableDefinition<&[u8; 32], &[u8]> =
                                redb::TableDefinition::new(table);
                            let _ = tx.delete_table(def);
                        }
                    }
                }
                tx.open_table(META)?.insert("format", FORMAT_VERSION)?;
                // Create every table so readers never meet a missing one.
                tx.open_table(RESULTS)?;
                tx.open_table(OBJECTS)?;
                tx.open_table(FILES)?;
                tx.open_table(INTERFACES)?;
                tx.open_table(OLD_COMPONENTS)?;
                tx.open_table(COMPILED)?;
                tx.open_table(FUNCTIONS)?;
                tx.open_table(USAGE)?;
                tx.open_table(BY_EXPORT)?;
                tx.open_table(CLOSURES)?;
                tx.open_table(RUNS)?;
                Ok(())
            }),
            Some(other) => Err(Error::new(
                ErrorKind::Cache,
                format!(
                    "cache {} has format {other}, this cairn reads format {FORMAT_VERSION}; \
                     use a newer cairn or another --cache-dir",
                    self.index_path().display()
                ),
            )),
        }
    }

    /// Now, by this cache's clock, in ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of input files read for hashing since the store was opened.
    pub(crate) fn bytes_hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// Bytes of blobs tasks read since the store was opened.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes of blobs a task read.
    pub(crate) fn count_read(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join(index::FILE)
    }

    fn object_path(&self, hash: &Digest) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Runs `f` in one read transaction.
    fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Redb<T>) -> Result<T> {
        self.index.read(f)
    }

    /// Runs `f` in one write transaction and commits it, now.
    fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Redb<T>) -> Result<T> {
        self.index.write(f)
    }

    /// Makes the index reads of a batch of calls share one snapshot (taken
    /// again after each commit through this store) until the result is
    /// dropped: a read transaction costs several file-lock calls. Results
    /// other processes store meanwhile are seen by the next batch.
    pub(crate) fn hold_snapshot(&self) -> index::Hold<'_> {
        self.index.hold()
    }

    /// Writable opens of the index and durable commits this store has made:
    /// each costs fsyncs, which a hit must not.
    #[cfg(test)]
    pub(crate) fn durable_writes(&self) -> u64 {
        self.index.durable_writes()
    }

    /// Waits until every queued write is committed (statistics: appended to
    /// the log), so other processes see it. Called when a host is done (and
    /// on drop).
    pub(crate) fn flush(&self) -> Result<()> {
        self.queue.flush().map_err(|e| {
            Error::new(
                ErrorKind::Cache,
                format!(
                    "cannot write results to {}: {e} (they will be recomputed); check the disk's free space and the cache directory's permissions, or use another --cache-dir",
                    self.index_path().display()
                ),
            )
        })
    }

    /// [`Store::flush`], and then the statistics every process logged are
    /// folded into the index: for readers of hit counts and run history.
    pub(crate) fn settle(&self) -> Result<()> {
        self.flush()?;
        self.index.fold_stats()
    }

    /// The record stored under `key`, with its manifest bytes.
    pub(crate) fn record_bytes(&self, key: &Digest) -> Result<Option<Arc<[u8]>>> {
        if let Some(b) = self.queue.find(|b| b.results.get(key).cloned()) {
            return Ok(Some(b));
        }
        self.read(|tx| {
            let results = tx.open_table(RESULTS)?;
            Ok(results.get(key.as_bytes())?.map(|v| Arc::from(v.value())))
        })
    }

    /// The result stored under `key` and its value's bytes, verified: the
    /// hit path. `None` on a miss, or when the value is missing or damaged
    /// (a damaged object is dropped, so the caller re-executes and repairs
    /// it).
    pub(crate) fn stored_value(&self, key: &Digest) -> Result<Option<(ResultRecord, Vec<u8>)>> {
        let generation = match self.hot.get(key) {
            Ok(hot) => return Ok(Some((hot.0, hot.1.to_vec()))),
            Err(generation) => generation,
        };
        let queued = self.queue.find(|b| {
            let record = ResultRecord::from_bytes(b.results.get(key)?)?;
            Some((record, b.objects.get(&record.value).map(|o| o.to_vec())))
        });
        let (record, inline) = match queued {
            Some((record, Some(bytes))) => (record, Some(bytes)),
            Some((record, None)) => (record, self.inline_object(&record.value)?),
            // Committed: record and small value in one read transaction.
            None => {
                let found = self
                    .index
                    .read_tables(RESULTS, OBJECTS, |results, objects| {
                        let (Some(results), Some(objects)) = (results, objects) else {
                            return Ok(None);
                        };
                        let Some(record) = results
                            .get(key.as_bytes())?
                            .and_then(|v| ResultRecord::from_bytes(v.value()))
                        else {
                            return Ok(None);
                        };
                        let inline = if record.value_len as usize <= INLINE_MAX {
                            let v = objects.get(record.value.as_bytes())?;
                            v.map(|v| v.value().to_vec())
                        } else {
                            None
                        };
                        Ok(Some((record, inline)))
                    })?;
                let Some(found) = found else { return Ok(None) };
                found
            }
        };
        let bytes = match inline {
            Some(b) => Some(b),
            None if record.value_len as usize > INLINE_MAX => {
                self.object_file_bytes(&record.value)?
            }
            None => None,
        };
        let value = self.verified(&record.value, record.value_len, bytes)?;
        if let Some(v) = &value {
            self.hot.put(key, record, v, generation);
        }
        Ok(value.map(|b| (record, b)))
    }

    /// Counts a hit of `key` (written with the next shared commit).
    pub(crate) fn hit(&self, key: &Digest) {
        self.queue.count_hit(key, self.now_ms());
    }

    /// Records a finished run (numbered when it reaches the index), with
    /// the next commit or within a second.
    pub(crate) fn record_run(&self, run: RunRecord) {
        let run = batch::RunJson::of(run);
        self.queue.push_lazy(|b| b.runs.push(run));
    }

    /// The content of object `hash`, verified; `None` if it is missing or
    /// damaged (a damaged object is dropped, so the caller re-executes and
    /// repairs it).
    pub(crate) fn object(&self, hash: &Digest, len: u64) -> Result<Option<Vec<u8>>> {
        let bytes = if len as usize <= INLINE_MAX {
            self.inline_object(hash)?
        } else {
            self.object_file_bytes(hash)?
        };
        self.verified(hash, len, bytes)
    }

    /// The content of object `hash` of unknown length, verified.
    pub(crate) fn object_any(&self, hash: &Digest) -> Result<Option<Vec<u8>>> {
        let bytes = match self.inline_object(hash)? {
            Some(b) => Some(b),
            None => self.object_file_bytes(hash)?,
        };
        Ok(bytes.filter(|b| Digest::of(b) == *hash))
    }

    fn inline_object(&self, hash: &Digest) -> Result<Option<Vec<u8>>> {
        if let Some(b) = self.queue.find(|b| b.objects.get(hash).map(|o| o.to_vec())) {
            return Ok(Some(b));
        }
        self.read(|tx| {
            let table = tx.open_table(OBJECTS)?;
            Ok(table.get(hash.as_bytes())?.map(|v| v.value().to_vec()))
        })
    }

    fn object_file_bytes(&self, hash: &Digest) -> Result<Option<Vec<u8>>> {
        match fs::read(self.object_path(hash)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(
                format_args!("cannot read cached object {hash}"),
                e,
            )),
        }
    }

    fn verified(&self, hash: &Digest, len: u64, bytes: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        match bytes {
            Some(b) if Digest::of(&b) == *hash => Ok(Some(b)),
            Some(_) => {
                tracing::warn!(%hash, "cached object is damaged; dropping it and re-executing");
                self.drop_object(hash, len)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Whether object `hash` is present and intact, without repairing anything.
    pub(crate) fn object_ok(&self, hash: &Digest, len: u64) -> bool {
        let bytes = if len as usize <= INLINE_MAX {
            self.inline_object(hash).ok().flatten()
        } else {
            fs::read(self.object_path(hash)).ok()
        };
        bytes.is_some_and(|b| Digest::of(&b) == *hash)
    }

    /// Whether object `hash` is not here at all (rather than here but
    /// damaged).
    pub(crate) fn object_absent(&self, hash: &Digest, len: u64) -> bool {
        if len as usize <= INLINE_MAX {
            return matches!(self.inline_object(hash), Ok(None));
        }
        fs::symlink_metadata(self.object_path(hash))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    }

    /// The path of a stored object file, for reading a large blob in place.
    /// Only objects over [`INLINE_MAX`] have one.
    pub(crate) fn object_file(&self, hash: &Digest) -> PathBuf {
        self.object_path(hash)
    }

    pub(crate) fn drop_object(&self, hash: &Digest, len: u64) -> Result<()> {
        if len as usize > INLINE_MAX {
            let _ = fs::remove_file(self.object_path(hash));
            return Ok(());
        }
        self.write(|tx| {
            tx.open_table(OBJECTS)?.remove(hash.as_bytes())?;
            Ok(())
        })
    }

    /// Writes object `hash` to its file; its directory goes to `dirs`.
    fn write_object_file(&self, hash: &Digest, bytes: &[u8], dirs: &mut Dirs) -> Result<()> {
        let path = self.object_path(hash);
        // Content-addressed: a file that already holds this content stays;
        // a missing, cut or altered one is replaced.
        let intact = fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && crate::digest::hash_file(&path).is_ok_and(|(h, _)| h == *hash);
        if intact {
            // Its content was synced before it got its name; the name may
            // be another process's, not yet synced. Made recent again, so
            // that a `cache gc` sweeping old orphans leaves it until the
            // entry that names it is committed.
            let _ = fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            dirs.insert(parent(&path).to_path_buf());
            return Ok(());
        }
        self.write_file(&path, bytes, Some(dirs))
    }

    /// Whether object `hash` of `len` bytes is present, by `stat` (or index
    /// lookup for a small one): cheap enough for every hit. Its content is
    /// verified when it is read.
    pub(crate) fn has_object(&self, hash: &Digest, len: u64) -> bool {
        if len as usize > INLINE_MAX {
            return fs::metadata(self.object_path(hash)).is_ok_and(|m| m.len() == len);
        }
        if self.queue.find(|b| b.objects.get(hash).map(drop)).is_some() {
            return true;
        }
        self.read(|tx| {
            let table = tx.open_table(OBJECTS)?;
            Ok(table
                .get(hash.as_bytes())?
                .is_some_and(|v| v.value().len() as u64 == len))
        })
        .unwrap_or(false)
    }

    /// Writes `bytes` to `path` atomically: a synced temporary file,
    /// renamed. The rename (and any directory made for it) is durable once
    /// the directories added to `dirs` are synced, which the commit that
    /// first names the file does first. Without `dirs`, nothing is synced:
    /// for a file whose reader checks it against a recorded hash and makes
    /// it again if it is missing or torn.
    fn write_file(&self, path: &Path, bytes: &[u8], dirs: Option<&mut Dirs>) -> Result<()> {
        let parent = parent(path);
        let fail = |e| {
            Error::io(
                format_args!("cannot write to cache {}", self.dir.display()),
                e,
            )
        };
        let mut unsynced = Dirs::new();
        let durable = dirs.is_some();
        let dirs = dirs.unwrap_or(&mut unsynced);
        make_dir(parent, dirs).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(fail)?;
        tmp.write_all(bytes).map_err(fail)?;
        if durable {
            tmp.as_file().sync_data().map_err(fail)?;
        }
        tmp.persist(path).map_err(|e| fail(e.error))?;
        dirs.insert(parent.to_path_buf());
        Ok(())
    }

    fn compiled_path(&self, key: &Digest) -> PathBuf {
        self.dir
            .join("compiled")
            .join(format!("{}.cwasm", key.to_hex()))
    }

    /// The compiled artefact stored under `key`, verified against the hash
    /// recorded when it was written; `None` if absent or altered.
    pub(crate) fn compiled(&self, key: &Digest) -> Result<Option<Vec<u8>>> {
        let queued = self.queue.find(|b| b.compiled.get(key).cloned());
        let found = match queued {
            Some(bytes) => CompiledRecord::from_bytes(&bytes),
            None => self.read(|tx| {
                let table = tx.open_table(COMPILED)?;
                Ok(table
                    .get(key.as_bytes())?
                    .and_then(|v| CompiledRecord::from_bytes(v.value())))
            })?,
        };
        let Some(record) = found else {
            return Ok(None);
        };
        let bytes = fs::read(self.compiled_path(key))
            .ok()
            .filter(|b| Digest::of(b) == record.hash);
        if bytes.is_some() {
            let now = self.now_ms();
            self.queue.push_lazy(|b| {
                b.add_compiled(*key, now);
            });
        }
        Ok(bytes)
    }

    /// Stores a compiled artefact under `key`, compiling it took `took`:
    /// the file now, its record with the next shared commit (it only spares
    /// compiling again). Neither file nor directory is synced: a crash may
    /// leave the record naming a missing or torn file, which
    /// [`Store::compiled`] checks against the record's hash and turns into
    /// compiling again.
    pub(crate) fn put_compiled(&self, key: &Digest, bytes: &[u8], took: Duration) -> Result<()> {
        self.write_file(&self.compiled_path(key), bytes, None)?;
        let record = CompiledRecord {
            hash: Digest::of(bytes),
            compile_us: took.as_micros() as u64,
            last_used_ms: self.now_ms(),
            len: bytes.len() as u64,
        };
        self.queue.push(|b| {
            b.compiled.insert(*key, record.to_bytes());
        });
        Ok(())
    }

    /// Stages object `bytes`: a large one is written to its file now (its
    /// directory added to `staged.dirs`), a small one is added to
    /// `staged.inline` for the next shared commit.
    fn stage(&self, bytes: &[u8], staged: &mut Staged) -> Result<(Digest, u64)> {
        let hash = Digest::of(bytes);
        if bytes.len() > INLINE_MAX {
            self.write_object_file(&hash, bytes, &mut staged.dirs)?;
        } else {
            staged.inline.push((hash, bytes.into()));
        }
        Ok((hash, bytes.len() as u64))
    }

    /// Stores a call's result: object files now, everything else with the
    /// next shared commit (visible to this process at once).
    pub(crate) fn put_result(&self, new: NewEntry<'_>) -> Result<()> {
        let mut staged = Staged::default();
        let mut put = |bytes: &[u8]| self.stage(bytes, &mut staged);
        let mut stored = 0;
        for blob in new.blobs {
            stored += put(blob)?.1;
        }
        let (value, value_len) = put(new.value)?;
        let mut output = |o: &[u8]| -> Result<Option<(Digest, u64)>> {
            if o.is_empty() {
                return Ok(None);
            }
            Ok(Some(put(o)?))
        };
        let stdout = output(new.output.stdout)?;
        let stderr = output(new.output.stderr)?;
        put(new.args)?;
        let closures = self.new_closures(&new.closures, &mut put)?;
        let created_ms = self.now_ms();
        let record = ResultRecord {
            value,
            value_len,
            created_ms,
            run_us: new.run.as_micros() as u64,
            stdout,
            stderr,
            expires_ms: new.expires_ms,
            bytes: stored + value_len + stdout.map_or(0, |o| o.1) + stderr.map_or(0, |o| o.1),
        };
        let bytes: Arc<[u8]> = record.to_bytes(new.manifest)?.into();
        self.hot.forget(&new.key);
        self.queue.push(|b| {
            staged.into(b);
            b.results.insert(new.key, bytes);
            b.by_export
                .push((new.manifest.export.clone(), created_ms, new.key));
            b.closures.extend(closures);
        });
        Ok(())
    }

    /// The closure nodes (as JSON) this process has not stored yet; the
    /// bytes of their components are stored with `put`.
    fn new_closures(
        &self,
        nodes: &[(Digest, ClosureNode, &crate::task::Task)],
        put: &mut impl FnMut(&[u8]) -> Result<(Digest, u64)>,
    ) -> Result<Vec<(Digest, String)>> {
        let mut out = Vec::new();
        for (closure, node, task) in nodes {
            let known = self
                .known_closures
                .lock()
                .expect("poisoned")
                .contains(closure);
            if known || self.closure(closure)?.is_some() {
                self.known_closures
                    .lock()
                    .expect("poisoned")
                    .insert(*closure);
                continue;
            }
            let bytes = task.bytes()?;
            if !self.has_object(&node.component, bytes.len() as u64) {
                put(&bytes)?;
            }
            let json = serde_json::to_string(node)
                .map_err(|e| Error::internal(format!("cannot encode a closure: {e}")))?;
            out.push((*closure, json));
            self.known_closures
                .lock()
                .expect("poisoned")
                .insert(*closure);
        }
        Ok(out)
    }

    /// Stores an entry copied from another cache (the shared tier): its
    /// record as it was made there, and the objects this cache lacked, which
    /// the caller has verified against the hashes the record names.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    pub(crate) fn import(
        &self,
        key: &Digest,
        record: &[u8],
        export: &str,
        created_ms: u64,
        objects: &[Vec<u8>],
    ) -> Result<()> {
        let mut staged = Staged::default();
        for bytes in objects {
            self.stage(bytes, &mut staged)?;
        }
        let record: Arc<[u8]> = record.into();
        self.hot.forget(key);
        self.queue.push(|b| {
            staged.into(b);
            b.results.insert(*key, record);
            b.by_export.push((export.to_string(), created_ms, *key));
        });
        Ok(())
    }

    /// Stores one object on its own (results store theirs with
    /// [`Store::put_result`]): a component or input a worker was sent.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    pub(crate) fn put_object(&self, bytes: &[u8]) -> Result<Digest> {
        let mut staged = Staged::default();
        let (hash, _) = self.stage(bytes, &mut staged)?;
        self.queue.push(|b| staged.into(b));
        Ok(hash)
    }

    /// Hashes the file at `path`, or remembers its hash if `stat` says it is
    /// unchanged since it was last hashed. Returns the hash, the length, and
    /// the file's stamp at that moment (to check later that it is unchanged).
    ///
    /// A file that changes while it is hashed is an error: its hash would
    /// name no content it ever had.
    pub(crate) fn hash_file(&self, path: &Path) -> Result<(Digest, u64, FileStamp)> {
        let abs = fs::canonicalize(path)
            .map_err(|e| Error::io(format_args!("cannot open {}", path.display()), e))?;
        let key = abs.to_string_lossy().into_owned();
        let meta = fs::metadata(&abs)
            .map_err(|e| Error::io(format_args!("cannot stat {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let current = FileStamp::of(&meta);
        let remembered = match self.queue.find(|b| b.files.get(&key).cloned()) {
            Some(bytes) => StatEntry::from_bytes(&bytes),
            None => self.index.read_table(FILES, |table| {
                let v = table.map(|t| t.get(key.as_str())).transpose()?.flatten();
                Ok(v.and_then(|v| StatEntry::from_bytes(v.value())))
            })?,
        };
        if let Some(entry) = remembered.filter(|e| e.stamp == current) {
            return Ok((entry.hash, current.size(), current));
        }
        let (hash, len) = crate::digest::hash_file(&abs)
            .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e))?;
        self.hashed.fetch_add(len, Ordering::Relaxed);
        // Re-stat: remember only what was hashed, and only if it is not racy.
        let after = fs::metadata(&abs)
            .map_err(|e| Error::io(format_args!("cannot stat {}", path.display()), e))?;
        let stamp = FileStamp::of(&after);
        if stamp != current {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{} changed while cairn was hashing it; run again",
                    path.display()
                ),
            ));
        }
        let settled = after
            .modified()
            .ok()
            .and_then(|m| self.clock.now().duration_since(m).ok())
            .is_some_and(|age| age > RACY_WINDOW);
        if settled {
            let entry = StatEntry { stamp, hash }.to_bytes();
            self.queue.push(|b| {
                b.files.insert(key, entry);
            });
        }
        Ok((hash, len, stamp))
    }

    /// A Merkle hash of the directory tree at `dir`: for each entry, sorted
    /// by name, its name, its kind and its content (files by content hash,
    /// remembered by `stat` like any input; directories recursively; symlinks
    /// by their target). An unchanged tree costs a `stat` per entry.
    pub(crate) fn hash_dir(&self, dir: &Path) -> Result<Digest> {
        let fail = |e| Error::io(format_args!("cannot read directory {}", dir.display()), e);
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
            .map_err(fail)?
            .collect::<std::io::Result<_>>()
            .map_err(fail)?;
        entries.sort_by_key(|e| e.file_name());
        let mut h = blake3::Hasher::new_derive_key("cairn directory tree");
        let mut field = |tag: u8, bytes: &[u8]| {
            h.update(&[tag]);
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        for entry in entries {
            let path = entry.path();
            field(b'n', entry.file_name().as_encoded_bytes());
            let kind = entry.file_type().map_err(fail)?;
            if kind.is_symlink() {
                field(
                    b'l',
                    fs::read_link(&path)
                        .map_err(fail)?
                        .as_os_str()
                        .as_encoded_bytes(),
                );
            } else if kind.is_dir() {
                field(b'd', self.hash_dir(&path)?.as_bytes());
            } else if kind.is_file() {
                field(b'f', self.hash_file(&path)?.0.as_bytes());
            } else {
                field(b'o', &[]);
            }
        }
        Ok(h.finalize().into())
    }

    /// The interface of component `hash`, if it was described before.
    pub(crate) fn component_info(&self, hash: &Digest) -> Result<Option<Interface>> {
        // An entry this build cannot decode, or made by another version of
        // `describe`, is simply described again.
        if let Some(bytes) = self.queue.find(|b| b.components.get(hash).cloned()) {
            return Ok(Interface::decode(&bytes));
        }
        self.index.read_table(INTERFACES, |table| {
            let row = table.map(|t| t.get(hash.as_bytes())).transpose()?.flatten();
            Ok(row.and_then(|v| Interface::decode(v.value())))
        })
    }

    /// Remembers the interface of component `hash` (with the next shared
    /// commit: it is described again if lost).
    pub(crate) fn put_component_info(&self, hash: &Digest, info: &ComponentInfo) -> Result<()> {
        let bytes = info.encode();
        self.queue.push(|b| {
            b.components.insert(*hash, bytes);
        });
        Ok(())
    }
}

/// Directories to sync before a commit (see [`batch::Batch::dirs`]).
type Dirs = BTreeSet<PathBuf>;

/// Objects of one entry, staged for its commit.
#[derive(Default)]
struct Staged {
    /// Small objects, for the index.
    inline: Vec<(Digest, Arc<[u8]>)>,
    /// Directories that large objects were written into.
    dirs: Dirs,
}

impl Staged {
    fn into(self, batch: &mut batch::Batch) {
        batch.objects.extend(self.inline);
        batch.dirs.extend(self.dirs);
    }
}

/// The directory a cache file lives in.
fn parent(path: &Path) -> &Path {
    path.parent().expect("cache files live in a subdirectory")
}

/// Makes directory `dir` and any missing parents; the parent of each one
/// made goes to `dirs`, to be synced before an entry names a file in it.
fn make_dir(dir: &Path, dirs: &mut Dirs) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let up = dir.parent().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the cache directory is gone")
    })?;
    make_dir(up, dirs)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    dirs.insert(up.to_path_buf());
    Ok(())
}

/// Rewrites the index in `dir` without its free pages: a copy-on-write
/// B-tree leaves the pages of replaced versions free for reuse, which after
/// heavy writing is about half the file. Other processes may have the cache
/// open (they wait while it runs); this one must not. Nothing is done when
/// less than a tenth of the file is free (rewriting a compact million-entry
/// index costs 5 s; finding out, under 1 s). `Ok(None)` when another process
/// is in the middle of a transaction: nothing was changed, try later.
/// Returns the file's size before and after.
pub(crate) fn compact(dir: &Path) -> Result<Option<(u64, u64)>> {
    let path = dir.join(index::FILE);
    let size = || {
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e))
    };
    let before = size()?;
    let mut db = Database::builder()
        .set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .open(&path)
        .map_err(|e| open_error(&path, e))?;
    // A failed write (a full disk) is not a damaged index: say which it is.
    let failed = |e: redb::Error| match e {
        redb::Error::Io(io) => Error::io(
            format_args!("cannot compact {} (nothing was lost)", path.display()),
            io,
        ),
        other => damaged(&path, other),
    };
    // Pages a commit frees are released only by a later commit: whether the
    // last writer's final commit was followed by another depended on its
    // timing. Two empty commits release them, so the free space measured
    // (and compacted) is the same however the last run ended.
    let stats = (|| -> Redb<redb::DatabaseStats> {
        for _ in 0..2 {
            db.begin_write()?.commit()?;
        }
        Ok(db.begin_write()?.stats()?)
    })()
    .map_err(failed)?;
    let in_use = stats.allocated_pages() * stats.page_size() as u64;
    if before.saturating_sub(in_use) < before / 10 {
        return Ok(Some((before, before)));
    }
    match db.compact() {
        Ok(_) => {}
        Err(redb::CompactionError::TransactionInProgress) => return Ok(None),
        Err(e) => return Err(failed(e.into())),
    }
    drop(db);
    Ok(Some((before, size()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Store {
        Store::open(dir, Arc::new(crate::clock::SystemClock)).unwrap()
    }

    /// A store whose writes wait for a flush (or its end) to commit.
    fn open_held(dir: &Path) -> Store {
        Store::open_with(dir, Arc::new(crate::clock::SystemClock), Queue::start_held).unwrap()
    }

    fn manifest() -> KeyManifest {
        KeyManifest {
            component: "t".into(),
            closure: Digest::of(b"closure"),
            export: "f".into(),
            signature: "func()".into(),
            args: Vec::new(),
            sandbox: Digest::of(b"sandbox"),
            grants: Vec::new(),
            args_object: (Digest::of(b""), 0),
            blobs: Vec::new(),
            inputs: Vec::new(),
        }
    }

    fn put(s: &Store, key: &Digest, value: &[u8], blobs: &[&[u8]]) {
        let mut m = manifest();
        m.blobs = blobs
            .iter()
            .map(|b| (Digest::of(b), b.len() as u64))
            .collect();
        s.put_result(NewEntry {
            key: *key,
            value,
            blobs,
            run: Duration::from_millis(5),
            output: Output::default(),
            expires_ms: None,
            manifest: &m,
            args: b"",
            closures: Vec::new(),
        })
        .unwrap();
    }

    #[test]
    fn a_format_2_cache_keeps_its_results_and_turns_away_older_cairns() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        {
            let s = open(dir.path());
            put(&s, &key, b"value", &[]);
            s.flush().unwrap();
            s.write(|tx| {
                tx.open_table(META)?.insert("format", 2)?;
                Ok(())
            })
            .unwrap();
        }
        let s = open(dir.path());
        assert_eq!(s.stored_value(&key).unwrap().unwrap().1, b"value");
        let format = s.read(|tx| Ok(tx.open_table(META)?.get("format")?.map(|v| v.value())));
        assert_eq!(format.unwrap(), Some(FORMAT_VERSION));
    }

    #[test]
    fn results_and_objects_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        let big = vec![7u8; INLINE_MAX + 1];
        {
            let s = open(dir.path());
            put(&s, &key, b"value", &[&big[..]]);
            // Visible before the shared commit lands.
            assert_eq!(s.stored_value(&key).unwrap().unwrap().1, b"value");
        }
        let s = open(dir.path());
        let (record, value) = s.stored_value(&key).unwrap().unwrap();
        assert_eq!(value, b"value");
        assert_eq!(record.bytes, 5 + big.len() as u64);
        let big_hash = Digest::of(&big);
        assert_eq!(s.object(&big_hash, big.len() as u64).unwrap().unwrap(), big);
        assert_eq!(s.stored_value(&Digest::of(b"other")).unwrap(), None);
        let stored = s.entry(&key).unwrap().unwrap().manifest.unwrap();
        assert_eq!(stored.blobs, [(big_hash, big.len() as u64)]);
    }

    #[test]
    fn an_entry_commits_only_once_the_directory_of_its_object_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (key, other) = (Digest::of(b"key"), Digest::of(b"other"));
        let big = vec![3u8; INLINE_MAX + 1];
        {
            let s = open_held(dir.path());
            put(&s, &key, b"value", &[&big[..]]);
            put(&s, &other, b"small", &[]);
            // The object file has its name, not yet durable: a directory
            // that cannot be synced now (it vanished) stops the commit
            // that would name the file.
            let file = s.object_file(&Digest::of(&big));
            assert!(file.is_file());
            fs::remove_dir_all(file.parent().unwrap()).unwrap();
            let err = s.flush().unwrap_err();
            assert!(err.to_string().contains("cannot sync"), "{err}");
        }
        let s = open(dir.path());
        assert_eq!(
            s.record_bytes(&key).unwrap(),
            None,
            "no key names the object"
        );
        assert_eq!(
            s.record_bytes(&other).unwrap(),
            None,
            "the batch is one commit"
        );
        // Stored again, it is all there.
        put(&s, &key, b"value", &[&big[..]]);
        s.flush().unwrap();
        drop(s);
        let s = open(dir.path());
        assert_eq!(s.stored_value(&key).unwrap().unwrap().1, b"value");
        assert_eq!(
            s.object(&Digest::of(&big), big.len() as u64).unwrap(),
            Some(big)
        );
    }

    #[test]
    fn hits_are_counted_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        {
            let s = open(dir.path());
            put(&s, &key, b"v", &[]);
            s.hit(&key);
            s.hit(&key);
        }
        let s = open(dir.path());
        s.hit(&key);
        assert_eq!(s.entry(&key).unwrap().unwrap().usage.hits, 3);
    }

    /// Whatever a run stores (the stat cache, compiled functions, the
    /// compiled artefact, the interface, the result), it reaches the index
    /// in one commit: each commit costs two fsyncs. (The CLI's sync count,
    /// `cli::an_executing_run_makes_one_commit`, also sees redb's own.)
    #[test]
    fn a_run_stores_everything_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path())); // the cache exists: opened read-only
        let s = open_held(dir.path());
        let input = dir.path().join("input.csv");
        fs::write(&input, b"a,b\n").unwrap();
        s.hash_file(&input).unwrap();
        s.put_functions(&[(b"function key".to_vec(), b"code".to_vec())])
            .unwrap();
        let component = Digest::of(b"component");
        s.put_compiled(&component, b"artefact", Duration::from_millis(5))
            .unwrap();
        let info = ComponentInfo {
            version: crate::component::INFO_VERSION,
            exports: Vec::new(),
            imports: vec!["x:y/z".into()],
        };
        s.put_component_info(&component, &info).unwrap();
        put(&s, &Digest::of(b"key"), b"v", &[]);
        assert_eq!(s.durable_writes(), 0, "nothing written before the flush");
        s.flush().unwrap();
        assert_eq!(s.durable_writes(), 2, "one writable open, one commit");
        assert!(s.compiled(&component).unwrap().is_some());
        assert!(s.component_info(&component).unwrap().is_some());
    }

    #[test]
    fn a_hit_writes_nothing_durable_and_its_statistics_reach_the_index_later() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        {
            let s = open(dir.path());
            put(&s, &key, b"v", &[]);
            s.flush().unwrap();
            assert!(s.durable_writes() >= 1, "a miss stores its result durably");
        }
        let run =
            |error: &str| RunRecord::of(&[], std::time::Instant::now(), Some(error.into()), 1);
        for hit in ["first hit", "second hit"] {
            let s = open(dir.path());
            assert_eq!(s.stored_value(&key).unwrap().unwrap().1, b"v");
            s.hit(&key);
            s.record_run(run(hit));
            s.flush().unwrap();
            drop(s.queue);
            assert_eq!(
                s.index.durable_writes(),
                0,
                "{hit}: no writable open, no commit"
            );
        }
        // Readers of statistics fold the log in: nothing lost, nothing twice.
        let s = open(dir.path());
        assert_eq!(s.entry(&key).unwrap().unwrap().usage.hits, 2);
        let runs: Vec<_> = s.runs(10).unwrap().into_iter().map(|r| r.error).collect();
        assert_eq!(runs, [Some("second hit".into()), Some("first hit".into())]);
        // The next commit of results carries hits counted since.
        s.hit(&key);
        put(&s, &Digest::of(b"other"), b"w", &[]);
        s.flush().unwrap();
        drop(s);
        let s = open(dir.path());
        assert_eq!(s.entry(&key).unwrap().unwrap().usage.hits, 3);
    }

    #[test]
    fn a_held_snapshot_sees_this_stores_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let key = Digest::of(b"key");
        let _held = s.hold_snapshot();
        assert_eq!(s.stored_value(&key).unwrap(), None, "the snapshot is taken");
        put(&s, &key, b"v", &[]);
        s.flush().unwrap();
        assert_eq!(s.stored_value(&key).unwrap().unwrap().1, b"v");
    }

    #[test]
    fn sweep_keeps_referenced_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let (keep, gone) = (Digest::of(b"keep"), Digest::of(b"gone"));
        let big = |b: u8| vec![b; INLINE_MAX + 1];
        let (a, b) = (big(1), big(2));
        put(&s, &keep, b"kept value", &[&a[..]]);
        put(&s, &gone, b"gone value", &[&b[..]]);
        // Read once, so that it is also remembered in memory.
        assert!(s.stored_value(&gone).unwrap().is_some());
        assert_eq!(s.remove(&[gone]).unwrap(), 1);
        let swept = s.sweep(Duration::ZERO).unwrap();
        assert_eq!(swept.objects, 2, "the removed value and blob");
        assert!(s.has_object(&Digest::of(&a), a.len() as u64));
        assert!(!s.has_object(&Digest::of(&b), b.len() as u64));
        assert!(s.stored_value(&keep).unwrap().is_some());
        assert!(s.stored_value(&gone).unwrap().is_none());
    }

    #[test]
    fn damaged_object_is_a_miss_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let big = vec![1u8; INLINE_MAX * 2];
        let hash = s.put_object(&big).unwrap();
        let file = s.object_file(&hash);
        let mut bytes = fs::read(&file).unwrap();
        bytes[10] ^= 1;
        fs::write(&file, bytes).unwrap();
        assert_eq!(s.object(&hash, big.len() as u64).unwrap(), None);
        assert!(!file.exists());
    }

    #[test]
    fn unchanged_file_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let clock = crate::clock::ManualClock::starting_now();
        let s = Store::open(&dir.path().join("cache"), Arc::new(clock.clone())).unwrap();
        let input = dir.path().join("input");
        fs::write(&input, b"some data").unwrap();
        // Later than the racy window after the write, by the store's clock.
        clock.advance(RACY_WINDOW * 2);
        let first = s.hash_file(&input).unwrap();
        assert_eq!((first.0, first.1), (Digest::of(b"some data"), 9));
        assert_eq!(s.bytes_hashed(), 9);
        assert_eq!(s.hash_file(&input).unwrap(), first);
        assert_eq!(s.bytes_hashed(), 9, "second look must be a stat only");
        fs::write(&input, b"other data!").unwrap();
        assert_eq!(s.hash_file(&input).unwrap().0, Digest::of(b"other data!"));
    }

    #[test]
    fn garbage_index_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("index.redb"), vec![0x5a; 8192]).unwrap();
        let err = Store::open(dir.path(), Arc::new(crate::clock::SystemClock))
            .err()
            .expect("garbage must not open");
        assert_eq!(err.kind(), ErrorKind::Cache);
        assert!(err.to_string().contains("move it aside"), "{err}");
    }
}
