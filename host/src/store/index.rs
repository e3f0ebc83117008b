//! The redb index, opened no further than a run needs. A run that only
//! reads it (a hit) opens it read-only: no recovery flag is written on open
//! and no allocator state on close, so it syncs nothing. The first write
//! opens it for writing (redb's multi-writer mode: many processes share the
//! file), and every write commits durably, folding in the statistics other
//! runs appended to the log ([`super::stats`]) meanwhile.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use redb::{ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase};

use super::stats;
use super::{damaged, open_error, Redb};
use crate::error::{Error, Result};

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
            self.durable.fetch_add(1, Ordering::Relaxed);
        }
        Ok(self.writer.get().expect("set above"))
    }

    /// Runs `f` in one read transaction: on the writable handle once there
    /// is one (so that this process reads what it wrote), else read-only.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Redb<T>) -> Result<T> {
        let tx = match (self.writer.get(), &self.reader) {
            (Some(db), _) => db.begin_read(),
            (None, Some(db)) => db.begin_read(),
            (None, None) => unreachable!("an index is open one way or the other"),
        };
        tx.map_err(Into::into)
            .and_then(|tx| f(&tx))
            .map_err(|e| damaged(&self.path, e))
    }

    /// Runs `f` in one write transaction with the logged statistics, and
    /// commits it durably.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Redb<T>) -> Result<T> {
        self.writer().map_err(|e| open_error(&self.path, e))?;
        self.commit(f).map_err(|e| damaged(&self.path, e))
    }

    /// [`Index::write`], with redb's own error.
    pub(crate) fn commit<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Redb<T>) -> Redb<T> {
        let tx = self.writer()?.begin_write()?;
        // Taken under the write lock, so no other process folds it too.
        stats::take(&self.dir).write(&tx)?;
        let out = f(&tx)?;
        tx.commit()?;
        self.durable.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }

    /// Appends the statistics of `batch` to the log, without syncing; folds
    /// the log into the index once it has grown past [`stats::FOLD_AT`].
    pub(crate) fn append_stats(&self, batch: &super::commit::Batch) -> Result<()> {
        let len = stats::append(&self.dir, batch).map_err(|e| {
            Error::io(
                format_args!("cannot append to {}", self.dir.join(stats::LOG).display()),
                e,
            )
        })?;
        if len > stats::FOLD_AT {
            self.write(|_| Ok(()))?;
        }
        Ok(())
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
        self.durable.load(Ordering::Relaxed)
    }
}
