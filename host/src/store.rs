//! The cache on disk: a redb index plus a content-addressed object store.
//!
//! Layout of a cache directory:
//!
//! ```text
//! index.redb            results, small objects, the stat cache, component interfaces
//! objects/ab/cdef…      objects over 64 KiB, named by their blake3 hash
//! compiled/KEY.cwasm    compiled components, by component hash and engine
//! ```
//!
//! Every object read is verified against its hash; a mismatch is a miss, and
//! the damaged object is dropped so the next run repairs it. Writes go object
//! first (files written to a temporary name, synced, then renamed), index
//! last, in one transaction: a crash never leaves a key pointing at a missing
//! value. Many processes may use one cache at once (redb's multi-writer
//! mode); each write transaction is short.

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::component::ComponentInfo;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

/// Call key → [`ResultRecord`] bytes.
const RESULTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("results");
/// Object hash → content, for objects up to [`INLINE_MAX`] bytes.
const OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("objects");
/// Absolute path → [`StatEntry`] bytes: files hashed before.
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// Component hash → its interface ([`ComponentInfo`] as JSON).
const COMPONENTS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("components");
/// Artefact key (component × engine) → hash of the compiled artefact file.
const COMPILED: TableDefinition<&[u8; 32], &[u8; 32]> = TableDefinition::new("compiled");
/// Format metadata.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// Objects up to this size live in the index; larger ones are files.
pub const INLINE_MAX: usize = 64 * 1024;
/// A file modified this recently is hashed but not remembered: a second write
/// within the file system's timestamp granularity could go unseen.
const RACY_WINDOW: Duration = Duration::from_millis(100);

/// What the index keeps for one cached call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultRecord {
    /// Hash of the result's canonical encoding (an object).
    pub value: Digest,
    /// Its length in bytes.
    pub value_len: u64,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// How long the call took to execute, in microseconds.
    pub run_us: u64,
    /// What the run wrote to stdout (an object), if anything.
    pub stdout: Option<(Digest, u64)>,
    /// What the run wrote to stderr (an object), if anything.
    pub stderr: Option<(Digest, u64)>,
}

impl ResultRecord {
    /// Layout version 2: adds the captured output.
    const VERSION: u8 = 2;
    const LEN: usize = 1 + 32 + 8 + 8 + 8 + 40 + 40;

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = Self::VERSION;
        b[1..33].copy_from_slice(self.value.as_bytes());
        b[33..41].copy_from_slice(&self.value_len.to_le_bytes());
        b[41..49].copy_from_slice(&self.created_ms.to_le_bytes());
        b[49..57].copy_from_slice(&self.run_us.to_le_bytes());
        for (at, out) in [(57, self.stdout), (97, self.stderr)] {
            if let Some((hash, len)) = out {
                b[at..at + 32].copy_from_slice(hash.as_bytes());
                b[at + 32..at + 40].copy_from_slice(&len.to_le_bytes());
            }
        }
        b
    }

    /// `None` for bytes of another layout: such an entry is a miss, re-run
    /// and rewritten.
    fn from_bytes(b: &[u8]) -> Option<ResultRecord> {
        if b.len() != Self::LEN || b[0] != Self::VERSION {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("fixed layout"));
        let digest_at =
            |i: usize| Digest::from_bytes(b[i..i + 32].try_into().expect("fixed layout"));
        let output = |at: usize| Some((digest_at(at), u64_at(at + 32))).filter(|(_, len)| *len > 0);
        Some(ResultRecord {
            value: digest_at(1),
            value_len: u64_at(33),
            created_ms: u64_at(41),
            run_us: u64_at(49),
            stdout: output(57),
            stderr: output(97),
        })
    }
}

/// What a run wrote to stdout and stderr.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Output<'a> {
    pub(crate) stdout: &'a [u8],
    pub(crate) stderr: &'a [u8],
}

/// What `stat` says of a file: if it is the same later, so is the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(meta: &fs::Metadata) -> FileStamp {
        let e = StatEntry::of(meta, Digest::from_bytes([0; 32]));
        FileStamp {
            dev: e.dev,
            ino: e.ino,
            size: e.size,
            mtime_ns: e.mtime_ns,
            ctime_ns: e.ctime_ns,
        }
    }

    /// The stamp of `path` now, if it can be read.
    pub(crate) fn now(path: &Path) -> Option<FileStamp> {
        fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }
}

/// A file's identity as `stat` reports it, and the hash of its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StatEntry {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    hash: Digest,
}

impl StatEntry {
    const LEN: usize = 8 * 3 + 16 * 2 + 32;

    fn of(meta: &fs::Metadata, hash: Digest) -> StatEntry {
        StatEntry {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            hash,
        }
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(Self::LEN);
        b.extend_from_slice(&self.dev.to_le_bytes());
        b.extend_from_slice(&self.ino.to_le_bytes());
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&self.mtime_ns.to_le_bytes());
        b.extend_from_slice(&self.ctime_ns.to_le_bytes());
        b.extend_from_slice(self.hash.as_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Option<StatEntry> {
        if b.len() != Self::LEN {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("fixed layout"));
        let i = |at: usize| i128::from_le_bytes(b[at..at + 16].try_into().expect("fixed layout"));
        Some(StatEntry {
            dev: u(0),
            ino: u(8),
            size: u(16),
            mtime_ns: i(24),
            ctime_ns: i(40),
            hash: Digest::from_bytes(b[56..88].try_into().expect("fixed layout")),
        })
    }

    fn same_file(&self, other: &StatEntry) -> bool {
        (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
            == (
                other.dev,
                other.ino,
                other.size,
                other.mtime_ns,
                other.ctime_ns,
            )
    }
}

/// The cache directory: index and objects.
pub(crate) struct Store {
    db: Database,
    dir: PathBuf,
    /// Bytes read from input files to hash them, since this store was opened.
    hashed: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the cache in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Store> {
        fs::create_dir_all(dir.join("objects")).map_err(|e| {
            Error::io(
                format_args!(
                    "cannot create cache directory {} (choose another with --cache-dir)",
                    dir.display()
                ),
                e,
            )
        })?;
        let path = dir.join("index.redb");
        let db = Database::builder()
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let store = Store {
            db,
            dir: dir.to_path_buf(),
            hashed: AtomicU64::new(0),
        };
        store.check_format(&path)?;
        Ok(store)
    }

    fn check_format(&self, path: &Path) -> Result<()> {
        let tx = self.db.begin_write().map_err(|e| damaged(path, e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| damaged(path, e))?;
            let found = meta
                .get("format")
                .map_err(|e| damaged(path, e))?
                .map(|v| v.value());
            match found {
                Some(FORMAT_VERSION) => {}
                None => {
                    meta.insert("format", FORMAT_VERSION)
                        .map_err(|e| damaged(path, e))?;
                    // Create every table so readers never meet a missing one.
                    tx.open_table(RESULTS).map_err(|e| damaged(path, e))?;
                    tx.open_table(OBJECTS).map_err(|e| damaged(path, e))?;
                    tx.open_table(FILES).map_err(|e| damaged(path, e))?;
                    tx.open_table(COMPONENTS).map_err(|e| damaged(path, e))?;
                    tx.open_table(COMPILED).map_err(|e| damaged(path, e))?;
                }
                Some(other) => {
                    return Err(Error::new(
                        ErrorKind::Cache,
                        format!(
                        "cache {} has format {other}, this cairn reads format {FORMAT_VERSION}; \
                             use another --cache-dir",
                        path.display()
                    ),
                    ))
                }
            }
        }
        tx.commit().map_err(|e| damaged(path, e))
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of input files read for hashing since the store was opened.
    pub(crate) fn bytes_hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.redb")
    }

    fn object_path(&self, hash: &Digest) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// The result stored under `key` and its value's bytes, verified, read in
    /// one transaction: the hit path. `None` on a miss, or when the value is
    /// missing or damaged (a damaged object is dropped, so the caller
    /// re-executes and repairs it).
    pub(crate) fn stored_value(&self, key: &Digest) -> Result<Option<(ResultRecord, Vec<u8>)>> {
        let (record, inline) = {
            let tx = self.db.begin_read().map_err(|e| self.damaged(e))?;
            let results = tx.open_table(RESULTS).map_err(|e| self.damaged(e))?;
            let found = results.get(key.as_bytes()).map_err(|e| self.damaged(e))?;
            let Some(record) = found.and_then(|v| ResultRecord::from_bytes(v.value())) else {
                return Ok(None);
            };
            let inline = if record.value_len as usize <= INLINE_MAX {
                let objects = tx.open_table(OBJECTS).map_err(|e| self.damaged(e))?;
                let found = objects
                    .get(record.value.as_bytes())
                    .map_err(|e| self.damaged(e))?;
                Some(found.map(|v| v.value().to_vec()))
            } else {
                None
            };
            (record, inline)
        };
        let bytes = match inline {
            Some(bytes) => bytes,
            None => self.object_file_bytes(&record.value)?,
        };
        Ok(self
            .verified(&record.value, record.value_len, bytes)?
            .map(|b| (record, b)))
    }

    /// The content of object `hash`, verified; `None` if it is missing or
    /// damaged (a damaged object is dropped, so the caller re-executes and
    /// repairs it).
    pub(crate) fn object(&self, hash: &Digest, len: u64) -> Result<Option<Vec<u8>>> {
        let bytes = if len as usize <= INLINE_MAX {
            let tx = self.db.begin_read().map_err(|e| self.damaged(e))?;
            let table = tx.open_table(OBJECTS).map_err(|e| self.damaged(e))?;
            let found = table.get(hash.as_bytes()).map_err(|e| self.damaged(e))?;
            found.map(|v| v.value().to_vec())
        } else {
            self.object_file_bytes(hash)?
        };
        self.verified(hash, len, bytes)
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

    /// Runs `f` in one write transaction and commits it.
    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> std::result::Result<(), redb::Error>,
    ) -> Result<()> {
        let run = || -> std::result::Result<(), redb::Error> {
            let tx = self.db.begin_write()?;
            f(&tx)?;
            tx.commit()?;
            Ok(())
        };
        run().map_err(|e| self.damaged(e))
    }

    fn damaged(&self, e: impl Into<redb::Error>) -> Error {
        damaged(&self.index_path(), e)
    }

    /// Checks every stored result: its value (and captured output) must be
    /// present and match its hash. Returns how many entries were checked and
    /// the keys of the damaged ones. Reads everything; meant for audits.
    pub(crate) fn verify(&self) -> Result<(usize, Vec<Digest>)> {
        let records: Vec<(Digest, Option<ResultRecord>)> = {
            let tx = self.db.begin_read().map_err(|e| self.damaged(e))?;
            let table = tx.open_table(RESULTS).map_err(|e| self.damaged(e))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(|e| self.damaged(e))? {
                let (k, v) = entry.map_err(|e| self.damaged(e))?;
                out.push((
                    Digest::from_bytes(*k.value()),
                    ResultRecord::from_bytes(v.value()),
                ));
            }
            out
        };
        let mut damaged = Vec::new();
        for (key, record) in &records {
            let ok = match record {
                // Another layout version: unreadable here, harmless (a miss).
                None => true,
                Some(r) => {
                    let objects = [Some((r.value, r.value_len)), r.stdout, r.stderr];
                    objects
                        .into_iter()
                        .flatten()
                        .all(|(hash, len)| self.object_ok(&hash, len))
                }
            };
            if !ok {
                damaged.push(*key);
            }
        }
        Ok((records.len(), damaged))
    }

    /// Whether object `hash` is present and intact, without repairing anything.
    fn object_ok(&self, hash: &Digest, len: u64) -> bool {
        let bytes = if len as usize <= INLINE_MAX {
            let read = || -> std::result::Result<Option<Vec<u8>>, redb::Error> {
                let tx = self.db.begin_read()?;
                let table = tx.open_table(OBJECTS)?;
                Ok(table.get(hash.as_bytes())?.map(|v| v.value().to_vec()))
            };
            read().ok().flatten()
        } else {
            fs::read(self.object_path(hash)).ok()
        };
        bytes.is_some_and(|b| Digest::of(&b) == *hash)
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
        let path = self.index_path();
        let tx = self.db.begin_write().map_err(|e| damaged(&path, e))?;
        tx.open_table(OBJECTS)
            .and_then(|mut t| t.remove(hash.as_bytes()).map(drop).map_err(Into::into))
            .map_err(|e| damaged(&path, e))?;
        tx.commit().map_err(|e| damaged(&path, e))
    }

    fn write_object_file(&self, hash: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.object_path(hash);
        // Content-addressed: a file that already holds this content stays;
        // a missing, cut or altered one is replaced.
        let intact = fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && crate::digest::hash_file(&path).is_ok_and(|(h, _)| h == *hash);
        if intact {
            return Ok(());
        }
        self.write_file(&path, bytes)
    }

    /// Whether object `hash` of `len` bytes is present, by `stat` (or index
    /// lookup for a small one): cheap enough for every hit. Its content is
    /// verified when it is read.
    pub(crate) fn has_object(&self, hash: &Digest, len: u64) -> bool {
        if len as usize > INLINE_MAX {
            return fs::metadata(self.object_path(hash)).is_ok_and(|m| m.len() == len);
        }
        let read = || -> std::result::Result<bool, redb::Error> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(OBJECTS)?;
            Ok(table
                .get(hash.as_bytes())?
                .is_some_and(|v| v.value().len() as u64 == len))
        };
        read().unwrap_or(false)
    }

    /// Writes `bytes` to `path` atomically: a synced temporary file, renamed.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let parent = path.parent().expect("cache files live in a subdirectory");
        let fail = |e| {
            Error::io(
                format_args!("cannot write to cache {}", self.dir.display()),
                e,
            )
        };
        fs::create_dir_all(parent).map_err(fail)?;
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(fail)?;
        tmp.write_all(bytes).map_err(fail)?;
        tmp.as_file().sync_data().map_err(fail)?;
        tmp.persist(path).map_err(|e| fail(e.error))?;
        // Make the rename itself durable before the index points at the file.
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
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
        let index = self.index_path();
        let tx = self.db.begin_read().map_err(|e| damaged(&index, e))?;
        let table = tx.open_table(COMPILED).map_err(|e| damaged(&index, e))?;
        let Some(expected) = table.get(key.as_bytes()).map_err(|e| damaged(&index, e))? else {
            return Ok(None);
        };
        let expected = Digest::from_bytes(*expected.value());
        Ok(fs::read(self.compiled_path(key))
            .ok()
            .filter(|b| Digest::of(b) == expected))
    }

    /// Stores a compiled artefact under `key`.
    pub(crate) fn put_compiled(&self, key: &Digest, bytes: &[u8]) -> Result<()> {
        self.write_file(&self.compiled_path(key), bytes)?;
        let hash = Digest::of(bytes);
        self.write(|tx| {
            tx.open_table(COMPILED)?
                .insert(key.as_bytes(), hash.as_bytes())?;
            Ok(())
        })
    }

    /// Stores a call's result: its objects first, then the index entry.
    pub(crate) fn put_result(
        &self,
        key: &Digest,
        value: &[u8],
        blobs: &[&[u8]],
        run: Duration,
        output: Output<'_>,
    ) -> Result<()> {
        let value_hash = Digest::of(value);
        let mut inline: Vec<(Digest, &[u8])> = Vec::new();
        let outputs = [output.stdout, output.stderr]
            .into_iter()
            .filter(|o| !o.is_empty());
        for bytes in blobs.iter().copied().chain([value]).chain(outputs) {
            let hash = Digest::of(bytes);
            if bytes.len() > INLINE_MAX {
                self.write_object_file(&hash, bytes)?;
            } else {
                inline.push((hash, bytes));
            }
        }
        let record = ResultRecord {
            value: value_hash,
            value_len: value.len() as u64,
            created_ms: now_ms(),
            run_us: run.as_micros() as u64,
            stdout: Some((Digest::of(output.stdout), output.stdout.len() as u64))
                .filter(|(_, n)| *n > 0),
            stderr: Some((Digest::of(output.stderr), output.stderr.len() as u64))
                .filter(|(_, n)| *n > 0),
        };
        self.write(|tx| {
            let mut objects = tx.open_table(OBJECTS)?;
            for (hash, bytes) in &inline {
                objects.insert(hash.as_bytes(), *bytes)?;
            }
            tx.open_table(RESULTS)?
                .insert(key.as_bytes(), &record.to_bytes()[..])?;
            Ok(())
        })
    }

    /// Stores one object on its own (results store theirs with [`Store::put_result`]).
    #[cfg(test)]
    pub(crate) fn put_object(&self, bytes: &[u8]) -> Result<Digest> {
        let hash = Digest::of(bytes);
        if bytes.len() > INLINE_MAX {
            self.write_object_file(&hash, bytes)?;
            return Ok(hash);
        }
        self.write(|tx| {
            tx.open_table(OBJECTS)?.insert(hash.as_bytes(), bytes)?;
            Ok(())
        })?;
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
        let key = abs.to_string_lossy();
        let meta = fs::metadata(&abs)
            .map_err(|e| Error::io(format_args!("cannot stat {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let current = StatEntry::of(&meta, Digest::from_bytes([0; 32]));
        let index = self.index_path();
        let remembered = {
            let tx = self.db.begin_read().map_err(|e| damaged(&index, e))?;
            let table = tx.open_table(FILES).map_err(|e| damaged(&index, e))?;
            let v = table.get(key.as_ref()).map_err(|e| damaged(&index, e))?;
            v.and_then(|v| StatEntry::from_bytes(v.value()))
        };
        if let Some(entry) = remembered.filter(|e| e.same_file(&current)) {
            return Ok((entry.hash, entry.size, FileStamp::of(&meta)));
        }
        let (hash, len) = crate::digest::hash_file(&abs)
            .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e))?;
        self.hashed.fetch_add(len, Ordering::Relaxed);
        // Re-stat: remember only what was hashed, and only if it is not racy.
        let after = fs::metadata(&abs)
            .map_err(|e| Error::io(format_args!("cannot stat {}", path.display()), e))?;
        let entry = StatEntry::of(&after, hash);
        if !entry.same_file(&current) {
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
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > RACY_WINDOW);
        if settled {
            self.write(|tx| {
                tx.open_table(FILES)?
                    .insert(key.as_ref(), &entry.to_bytes()[..])?;
                Ok(())
            })?;
        }
        Ok((hash, len, FileStamp::of(&after)))
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
    pub(crate) fn component_info(&self, hash: &Digest) -> Result<Option<ComponentInfo>> {
        let path = self.index_path();
        let tx = self.db.begin_read().map_err(|e| damaged(&path, e))?;
        let table = tx.open_table(COMPONENTS).map_err(|e| damaged(&path, e))?;
        let v = table.get(hash.as_bytes()).map_err(|e| damaged(&path, e))?;
        // An entry this build cannot parse, or made by another version of
        // `describe`, is simply described again.
        Ok(
            v.and_then(|v| serde_json::from_str::<ComponentInfo>(v.value()).ok())
                .filter(|info| info.version == crate::component::INFO_VERSION),
        )
    }

    /// Remembers the interface of component `hash`.
    pub(crate) fn put_component_info(&self, hash: &Digest, info: &ComponentInfo) -> Result<()> {
        let json = serde_json::to_string(info)
            .map_err(|e| Error::internal(format!("cannot encode interface: {e}")))?;
        self.write(|tx| {
            tx.open_table(COMPONENTS)?
                .insert(hash.as_bytes(), json.as_str())?;
            Ok(())
        })
    }
}

fn open_error(path: &Path, e: redb::DatabaseError) -> Error {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => Error::new(
            ErrorKind::Cache,
            format!(
                "cache {} is already open in this process (or by an old cairn holding it exclusively); \
                 share one Host, or use another --cache-dir",
                path.display()
            ),
        ),
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() != std::io::ErrorKind::InvalidData => {
            Error::io(format_args!("cannot open cache {} (choose another with --cache-dir)", path.display()), io)
        }
        other => damaged(path, other),
    }
}

fn damaged(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    Error::cache(
        format_args!(
            "cache index {} is unusable; move it aside (its results will be recomputed) or use another --cache-dir",
            path.display()
        ),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = ResultRecord {
            value: Digest::of(b"v"),
            value_len: 3,
            created_ms: 9,
            run_us: 1234,
            stdout: Some((Digest::of(b"out"), 3)),
            stderr: None,
        };
        assert_eq!(ResultRecord::from_bytes(&r.to_bytes()), Some(r));
        assert_eq!(ResultRecord::from_bytes(&[0; 3]), None);
    }

    #[test]
    fn results_and_objects_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"key");
        let big = vec![7u8; INLINE_MAX + 1];
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_result(
                &key,
                b"value",
                &[&big[..]],
                Duration::from_millis(5),
                Output::default(),
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let (_, value) = s.stored_value(&key).unwrap().unwrap();
        assert_eq!(value, b"value");
        let big_hash = Digest::of(&big);
        assert_eq!(s.object(&big_hash, big.len() as u64).unwrap().unwrap(), big);
        assert_eq!(s.stored_value(&Digest::of(b"other")).unwrap(), None);
    }

    #[test]
    fn damaged_object_is_a_miss_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
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
        let s = Store::open(&dir.path().join("cache")).unwrap();
        let input = dir.path().join("input");
        fs::write(&input, b"some data").unwrap();
        std::thread::sleep(RACY_WINDOW * 2);
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
        let err = Store::open(dir.path())
            .err()
            .expect("garbage must not open");
        assert_eq!(err.kind(), ErrorKind::Cache);
        assert!(err.to_string().contains("move it aside"), "{err}");
    }
}
