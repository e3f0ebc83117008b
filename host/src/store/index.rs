//! The redb index, opened no further than a run needs. A run that only
//! reads it (a hit) opens it read-only: no recovery flag is written on open
//! and no allocator state on close, so it syncs nothing. The first write
//! opens it for writing (redb's multi-writer mode: many processes share the
//! file), and every write commits durably, folding in the statistics other
//! runs appended to the log ([`super::stats`]) meanwhile.
//!
//! A read transaction costs file-lock calls (redb's multi-writer protocol).
//! While a [`Hold`] is alive (a batch of calls), reads share one snapshot
//! instead, taken again after each commit through this index: the batch
//! reads the cache as of its start plus its own writes.

use std::any::Any;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use redb::{
    ConcurrencyMode, Database, Key, ReadOnlyDatabase, ReadOnlyTable, ReadableDatabase,
    TableDefinition, TableError, TableHandle, Value,
};

use super::batch::Batch;
use super::stats;
use crate::error::{Error, ErrorKind, Result};

/// What redb's calls return.
pub(crate) type Redb<T> = std::result::Result<T, redb::Error>;

/// The index file's name in the cache directory.
pub(crate) const FILE: &str = "index.redb";

/// The index of one cache directory.
pub(crate) struct Index {
    dir: PathBuf,
    path: PathBuf,
    /// The read-only handle this process opened first, if the index existed.
    reader: Option<ReadOnlyDatabase>,
    /// The writable handle, opened by the first write.
    writer: OnceLock<Database>,
    /// Writable opens and commits so far: each costs fsyncs.
    durable: AtomicU64,
    /// Live [`Hold`]s.
    holds: AtomicUsize,
    /// The snapshot reads share while held, and the commit count it saw.
    snapshot: Mutex<Option<Snapshot>>,
}

/// A shared read snapshot and the tables opened in it so far: opening a
/// table looks it up in redb's table tree, which costs as much as the
/// lookup it serves.
struct Snapshot {
    tx: Arc<redb::ReadTransaction>,
    /// The commit count when it was taken.
    seen: u64,
    /// Tables opened in it, by name (`None`: the cache has no such table).
    tables: Vec<(String, Option<Arc<dyn Any + Send + Sync>>)>,
}

/// What a table's keys and values may be, to be kept in a [`Snapshot`].
pub(crate) trait Row: Value + Send + Sync + 'static {}
impl<T: Value + Send + Sync + 'static> Row for T {}

impl Snapshot {
    /// Table `def`, opened in this snapshot once; `None` if the cache has no
    /// such table.
    fn table<K: Key + Row, V: Row>(
        &mut self,
        def: TableDefinition<'static, K, V>,
    ) -> Redb<Option<Arc<ReadOnlyTable<K, V>>>> {
        let name = def.name();
        let table = match self.tables.iter().find(|(n, _)| *n == name) {
            Some((_, t)) => t.clone(),
            None => {
                let t = open(&self.tx, def)?.map(|t| Arc::new(t) as Arc<dyn Any + Send + Sync>);
                self.tables.push((name.to_owned(), t.clone()));
                t
            }
        };
        Ok(table.map(|t| {
            t.downcast::<ReadOnlyTable<K, V>>()
                .expect("a table's name names its key and value types")
        }))
    }
}

/// Table `def` in `tx`; `None` if the cache has no such table.
fn open<K: Key + Row, V: Row>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<'static, K, V>,
) -> Redb<Option<ReadOnlyTable<K, V>>> {
    match tx.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(redb::Error::from(e)),
    }
}

/// Reads share one snapshot while this lives (see the module's note).
pub(crate) struct Hold<'a>(&'a Index);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if self.0.holds.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Not kept past the batch: a live snapshot keeps writers from
            // reusing the pages it sees.
            *self.0.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b
}

impl Index {
    /// Opens the index in `dir`: read-only if it exists and is consistent,
    /// else for writing (creating the directory and the file, or repairing
    /// what a crashed writer left).
    pub(crate) fn open(dir: &Path) -> Result<Index> {
        let path = dir.join(FILE);
        let mut index = Index {
            dir: dir.to_path_buf(),
            reader: None,
            writer: OnceLock::new(),
            durable: AtomicU64::new(0),
            holds: AtomicUsize::new(0),
            snapshot: Mutex::new(None),
            path,
        };
        match builder().open_read_only(&index.path) {
            Ok(reader) => index.reader = Some(reader),
            // Missing, damaged, or in need of repair: what a writer's open
            // does about it (or says about it) is the answer.
            Err(_) => {
                fs::create_dir_all(dir).map_err(|e| {
                    Error::io(
                        format_args!(
                            "cannot create cache directory {} (choose another with --cache-dir)",
                            dir.display()
                        ),
                        e,
                    )
                })?;
                index.writer().map_err(|e| open_error(&index.path, e))?;
            }
        }
        Ok(index)
    }

    /// The writable handle, opened now if it is not yet.
    fn writer(&self) -> std::result::Result<&Database, redb::DatabaseError> {
        if let Some(db) = self.writer.get() {
            return Ok(db);
        }
        let db = builder().create(&self.path)?;
        // Of two threads opening at once, one handle stays; the other closes.
        if self.writer.set(db).is_ok() {
            self.durable.fetch_add(1, Ordering::SeqCst);
        }
        Ok(self.writer.get().expect("set above"))
    }

    /// Runs `f` in one read transaction: on the writable handle once there
    /// is one (so that this process reads what it wrote), else read-only;
    /// the shared snapshot while one is held.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Redb<T>) -> Result<T> {
        let run = || -> Redb<T> {
            match self.holds.load(Ordering::SeqCst) {
                0 => f(&self.begin_read()?),
                _ => f(&*self.snapshot()?),
            }
        };
        run().map_err(|e| damaged(&self.path, e))
    }

    fn begin_read(&self) -> std::result::Result<redb::ReadTransaction, redb::TransactionError> {
        match (self.writer.get(), &self.reader) {
            (Some(db), _) => db.begin_read(),
            (None, Some(db)) => db.begin_read(),
            (None, None) => unreachable!("an index is open one way or the other"),
        }
    }

    /// The shared snapshot, taken now if there is none since the last commit.
    fn snapshot(&self) -> Redb<Arc<redb::ReadTransaction>> {
        self.with_snapshot(|s| Ok(s.tx.clone()))
    }

    /// Runs `f` on the shared snapshot, taken now if there is none since the
    /// last commit.
    fn with_snapshot<T>(&self, f: impl FnOnce(&mut Snapshot) -> Redb<T>) -> Redb<T> {
        // Read before the snapshot is taken: a commit landing meanwhile
        // makes the next read take another.
        let commits = self.durable.load(Ordering::SeqCst);
        let mut held = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(s) if s.seen == commits => f(s),
            _ => f(held.insert(Snapshot {
                tx: Arc::new(self.begin_read()?),
                seen: commits,
                tables: Vec::new(),
            })),
        }
    }

    /// Runs `f` on table `def` as the next read would see it (see
    /// [`Index::read`]), or on `None` if the cache has no such table yet
    /// (one made before it existed). While a [`Hold`] lives the opened
    /// table is kept for the next reads of the batch.
    pub(crate) fn read_table<K: Key + Row, V: Row, T>(
        &self,
        def: TableDefinition<'static, K, V>,
        f: impl FnOnce(Option<&ReadOnlyTable<K, V>>) -> Redb<T>,
    ) -> Result<T> {
        let run = || -> Redb<T> {
            if self.holds.load(Ordering::SeqCst) == 0 {
                return f(open(&self.begin_read()?, def)?.as_ref());
            }
            f(self.with_snapshot(|s| s.table(def))?.as_deref())
        };
        run().map_err(|e| damaged(&self.path, e))
    }

    /// [`Index::read_table`] of two tables, both as of one snapshot.
    pub(crate) fn read_tables<K: Key + Row, V: Row, L: Key + Row, W: Row, T>(
        &self,
        a: TableDefinition<'static, K, V>,
        b: TableDefinition<'static, L, W>,
        f: impl FnOnce(Option<&ReadOnlyTable<K, V>>, Option<&ReadOnlyTable<L, W>>) -> Redb<T>,
    ) -> Result<T> {
        let run = || -> Redb<T> {
            if self.holds.load(Ordering::SeqCst) == 0 {
                let tx = self.begin_read()?;
                return f(open(&tx, a)?.as_ref(), open(&tx, b)?.as_ref());
            }
            let (ta, tb) = self.with_snapshot(|s| Ok((s.table(a)?, s.table(b)?)))?;
            f(ta.as_deref(), tb.as_deref())
        };
        run().map_err(|e| damaged(&self.path, e))
    }

    /// Makes reads share one snapshot until the result is dropped.
    pub(crate) fn hold(&self) -> Hold<'_> {
        self.holds.fetch_add(1, Ordering::SeqCst);
        Hold(self)
    }

    /// Runs `f` in one write transaction with the logged statistics, and
    /// commits it durably.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Redb<T>) -> Result<T> {
        self.writable()?;
        self.commit(f).map_err(|e| damaged(&self.path, e))
    }

    /// Opens the writable handle if it is not open yet; an index a writer
    /// cannot open (damaged, cut) is reported as such.
    pub(crate) fn writable(&self) -> Result<()> {
        self.writer()
            .map(drop)
            .map_err(|e| open_error(&self.path, e))
    }

    /// [`Index::write`], with redb's own error.
    pub(crate) fn commit<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Redb<T>) -> Redb<T> {
        let tx = self.writer()?.begin_write()?;
        // Taken under the write lock, so no other process folds it too.
        stats::take(&self.dir).write(&tx)?;
        let out = f(&tx)?;
        tx.commit()?;
        self.durable.fetch_add(1, Ordering::SeqCst);
        Ok(out)
    }

    /// Commits `batch` (with the logged statistics): an index found damaged
    /// is reported as such, any other failure (a full disk) as it is.
    pub(crate) fn commit_batch(&self, batch: &Batch) -> Result<()> {
        self.commit(|tx| batch.write(tx)).map_err(|e| match e {
            redb::Error::Corrupted(_) => damaged(&self.path, e),
            other => Error::new(ErrorKind::Cache, other.to_string()),
        })
    }

    /// Appends the statistics of `batch` to the log, without syncing; folds
    /// the log into the index once it has grown past [`stats::FOLD_AT`].
    /// Statistics never fail a run: a log that cannot be written (a
    /// read-only cache) is a warning, and they are lost.
    pub(crate) fn append_stats(&self, batch: &Batch) {
        let log = self.dir.join(stats::LOG);
        match stats::append(&self.dir, batch) {
            Ok(len) if len > stats::FOLD_AT => {
                if let Err(e) = self.write(|_| Ok(())) {
                    tracing::warn!("cannot fold {} into the index: {e}", log.display());
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot record hits and runs in {}: {e}", log.display()),
        }
    }

    /// Folds the logged statistics into the index, if there are any: for
    /// readers of hit counts and run history.
    pub(crate) fn fold_stats(&self) -> Result<()> {
        if stats::pending(&self.dir) {
            self.write(|_| Ok(()))?;
        }
        Ok(())
    }

    /// Writable opens and durable commits made through this index so far
    /// (each costs at least one fsync).
    #[cfg(test)]
    pub(crate) fn durable_writes(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }
}

pub(crate) fn open_error(path: &Path, e: redb::DatabaseError) -> Error {
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

pub(crate) fn damaged(path: &Path, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    Error::cache(
        format_args!(
            "cache index {} is unusable; move it aside (its results will be recomputed) or use another --cache-dir",
            path.display()
        ),
        e,
    )
}
