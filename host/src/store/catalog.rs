//! Reading the cache as a whole: listing and removing entries, the export
//! index, closures, run history, audits and sweeping unreferenced objects.
//! What to remove is decided elsewhere ([`crate::gc`]); this is the how.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use redb::{ReadableTable, ReadableTableMetadata};

use super::record::{CompiledRecord, ResultRecord, Usage};
use super::tables::*;
use super::Store;
use crate::digest::Digest;
use crate::entry::{ClosureNode, KeyManifest};
use crate::error::Result;
use crate::runs::RunRecord;

/// One stored entry as the index holds it.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub(crate) key: Digest,
    pub(crate) record: ResultRecord,
    /// `None` for a record whose manifest does not parse (written by
    /// another version): listed, never explained.
    pub(crate) manifest: Option<KeyManifest>,
    pub(crate) usage: Usage,
}

/// What a sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    pub(crate) objects: u64,
    pub(crate) bytes: u64,
}

/// A compiled artefact: its key, record, and whether its file is present.
/// What [`Store::verify`] found wrong, by entry key.
#[derive(Debug, Default)]
pub(crate) struct Damage {
    /// Entries whose value, output or a result blob is missing or altered.
    pub(crate) results: Vec<Digest>,
    /// Entries whose stored arguments are missing or altered.
    pub(crate) arguments: Vec<Digest>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct CompiledEntry {
    pub(crate) key: Digest,
    pub(crate) record: CompiledRecord,
}

fn listed(key: Digest, bytes: &[u8], usage: Usage) -> Option<Listed> {
    let record = ResultRecord::from_bytes(bytes)?;
    let manifest = ResultRecord::manifest(bytes);
    Some(Listed {
        key,
        record,
        manifest,
        usage,
    })
}

impl Store {
    /// Every stored entry, with its manifest and usage. Queued writes and
    /// logged statistics are committed first, so the listing is complete.
    pub(crate) fn entries(&self) -> Result<Vec<Listed>> {
        self.settle()?;
        self.read(|tx| {
            let usage = tx.open_table(USAGE)?;
            let mut out = Vec::new();
            for row in tx.open_table(RESULTS)?.iter()? {
                let (k, v) = row?;
                let key = Digest::from_bytes(*k.value());
                let u = usage
                    .get(k.value())?
                    .map(|u| Usage::from_bytes(u.value()))
                    .unwrap_or_default();
                out.extend(listed(key, v.value(), u));
            }
            Ok(out)
        })
    }

    /// The entry under `key`, queued or committed.
    pub(crate) fn entry(&self, key: &Digest) -> Result<Option<Listed>> {
        let Some(bytes) = self.record_bytes(key)? else {
            return Ok(None);
        };
        self.index.fold_stats()?;
        let usage = self.read(|tx| {
            Ok(tx
                .open_table(USAGE)?
                .get(key.as_bytes())?
                .map(|u| Usage::from_bytes(u.value()))
                .unwrap_or_default())
        })?;
        let mut usage = usage;
        usage.merge(self.queue.pending_usage(key));
        Ok(listed(*key, &bytes, usage))
    }

    /// Keys of stored entries whose hex starts with `prefix`.
    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>> {
        self.flush()?;
        let prefix = prefix.to_ascii_lowercase();
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(RESULTS)?.iter()? {
                let key = Digest::from_bytes(*row?.0.value());
                if key.to_hex().starts_with(&prefix) {
                    out.push(key);
                }
            }
            Ok(out)
        })
    }

    /// Up to `limit` entries for `export`, newest first: the candidates an
    /// explanation compares a miss with.
    pub(crate) fn entries_for_export(&self, export: &str, limit: usize) -> Result<Vec<Listed>> {
        // Queued entries first, newest first; then the committed ones.
        let mut keys: Vec<Digest> = Vec::new();
        self.queue.visit(|b| {
            let rows = b.by_export.iter().rev().filter(|(e, _, _)| e == export);
            keys.extend(rows.map(|(_, _, k)| *k));
        });
        let stored = self.read(|tx| {
            let table = tx.open_table(BY_EXPORT)?;
            let range = table.range((export, 0, &[0u8; 32])..=(export, u64::MAX, &[0xffu8; 32]))?;
            let mut out = Vec::new();
            for row in range.rev().take(limit) {
                let (k, _) = row?;
                out.push(Digest::from_bytes(*k.value().2));
            }
            Ok(out)
        })?;
        keys.extend(stored);
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert(*k));
        keys.truncate(limit);
        let mut out = Vec::new();
        for key in keys {
            out.extend(self.entry(&key)?);
        }
        Ok(out)
    }

    /// The closure node stored under `closure`.
    pub(crate) fn closure(&self, closure: &Digest) -> Result<Option<ClosureNode>> {
        let json = match self.queue.find(|b| b.closures.get(closure).cloned()) {
            Some(json) => Some(json),
            None => self.read(|tx| {
                Ok(tx
                    .open_table(CLOSURES)?
                    .get(closure.as_bytes())?
                    .map(|v| v.value().to_string()))
            })?,
        };
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Removes the entries under `keys` (their objects stay until a sweep).
    /// Returns how many were there.
    pub(crate) fn remove(&self, keys: &[Digest]) -> Result<usize> {
        self.flush()?;
        for key in keys {
            self.hot.forget(key);
        }
        self.write(|tx| {
            let mut results = tx.open_table(RESULTS)?;
            let mut usage = tx.open_table(USAGE)?;
            let mut by_export = tx.open_table(BY_EXPORT)?;
            let mut removed = 0;
            for key in keys {
                let Some(old) = results.remove(key.as_bytes())? else {
                    continue;
                };
                removed += 1;
                let bytes = old.value().to_vec();
                drop(old);
                usage.remove(key.as_bytes())?;
                if let Some(l) = listed(*key, &bytes, Usage::default()) {
                    if let Some(m) = &l.manifest {
                        by_export.remove((
                            m.export.as_str(),
                            l.record.created_ms,
                            key.as_bytes(),
                        ))?;
                    }
                }
            }
            Ok(removed)
        })
    }

    /// Every compiled artefact.
    pub(crate) fn compiled_entries(&self) -> Result<Vec<CompiledEntry>> {
        self.settle()?;
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(COMPILED)?.iter()? {
                let (k, v) = row?;
                if let Some(record) = CompiledRecord::from_bytes(v.value()) {
                    out.push(CompiledEntry {
                        key: Digest::from_bytes(*k.value()),
                        record,
                    });
                }
            }
            Ok(out)
        })
    }

    /// Removes compiled artefacts (index rows, then files).
    pub(crate) fn remove_compiled(&self, keys: &[Digest]) -> Result<()> {
        self.write(|tx| {
            let mut table = tx.open_table(COMPILED)?;
            for key in keys {
                table.remove(key.as_bytes())?;
            }
            Ok(())
        })?;
        for key in keys {
            let _ = fs::remove_file(self.compiled_path(key));
        }
        Ok(())
    }

    /// The most recent `limit` runs, newest first.
    pub(crate) fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.settle()?;
        self.read(|tx| {
            let mut out = Vec::new();
            for row in tx.open_table(RUNS)?.iter()?.rev().take(limit) {
                let (_, v) = row?;
                out.extend(serde_json::from_str::<RunRecord>(v.value()).ok());
            }
            Ok(out)
        })
    }

    /// Run `id`.
    pub(crate) fn run(&self, id: u64) -> Result<Option<RunRecord>> {
        self.settle()?;
        self.read(|tx| {
            Ok(tx
                .open_table(RUNS)?
                .get(id)?
                .and_then(|v| serde_json::from_str(v.value()).ok()))
        })
    }

    /// Sizes of the parts of the cache: the index file, object files,
    /// compiled artefact files.
    pub(crate) fn disk_usage(&self) -> Result<(u64, u64, u64)> {
        let size = |p: PathBuf| fs::metadata(p).map_or(0, |m| m.len());
        let index = size(self.index_path());
        let objects = walk_files(&self.dir.join("objects"))
            .iter()
            .map(|(_, len, _)| len)
            .sum();
        let compiled = walk_files(&self.dir.join("compiled"))
            .iter()
            .map(|(_, len, _)| len)
            .sum();
        Ok((index, objects, compiled))
    }

    /// Every object an entry refers to: its value, output, arguments and
    /// result blobs, and the components of its closure.
    fn referenced(&self, entries: &[Listed]) -> Result<HashSet<Digest>> {
        let mut live = HashSet::new();
        let mut closures = Vec::new();
        for e in entries {
            live.extend(e.record.objects().map(|(h, _)| h));
            if let Some(m) = &e.manifest {
                live.insert(m.args_object.0);
                live.extend(m.blobs.iter().map(|(h, _)| *h));
                closures.push(m.closure);
            }
        }
        let mut seen = HashSet::new();
        while let Some(c) = closures.pop() {
            if !seen.insert(c) {
                continue;
            }
            if let Some(node) = self.closure(&c)? {
                live.insert(node.component);
                closures.extend(node.imports.iter().map(|(_, child)| *child));
            }
        }
        Ok(live)
    }

    /// Deletes every object no entry refers to. Object files younger than
    /// `grace` stay: another process may be about to commit the entry that
    /// refers to them. Closures no entry reaches go too, and stat-cache rows
    /// of files that no longer exist.
    pub(crate) fn sweep(&self, grace: Duration) -> Result<Swept> {
        let entries = self.entries()?;
        let live = self.referenced(&entries)?;
        let live_closures: HashSet<Digest> = entries
            .iter()
            .filter_map(|e| e.manifest.as_ref().map(|m| m.closure))
            .collect();
        let mut swept = self.write(|tx| {
            let mut swept = Swept::default();
            let mut objects = tx.open_table(OBJECTS)?;
            let mut dead = Vec::new();
            for row in objects.iter()? {
                let (k, v) = row?;
                let hash = Digest::from_bytes(*k.value());
                if !live.contains(&hash) {
                    dead.push(hash);
                    swept.bytes += v.value().len() as u64;
                }
            }
            for hash in &dead {
                objects.remove(hash.as_bytes())?;
            }
            swept.objects += dead.len() as u64;
            // Closures are kept when any live closure reaches them.
            let reach = reachable(tx, &live_closures)?;
            tx.open_table(CLOSURES)?
                .retain(|k, _| reach.contains(&Digest::from_bytes(*k)))?;
            tx.open_table(FILES)?
                .retain(|path, _| fs::metadata(path).is_ok())?;
            Ok(swept)
        })?;
        // Real time, not the cache's clock: the grace protects objects another
        // process wrote moments ago and is about to commit.
        let now = std::time::SystemTime::now();
        for (path, len, modified) in walk_files(&self.dir.join("objects")) {
            let name: String = path
                .iter()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let Some(hash) = Digest::from_hex(&name) else {
                continue;
            };
            let old = now.duration_since(modified).is_ok_and(|age| age >= grace);
            if !live.contains(&hash) && old && fs::remove_file(&path).is_ok() {
                swept.objects += 1;
                swept.bytes += len;
            }
        }
        self.known_closures.lock().expect("poisoned").clear();
        Ok(swept)
    }

    /// Checks stored entries: each value, output and result blob must be
    /// present and match its hash (else the entry is in `results`), and so
    /// must the object of its arguments, where it is kept (else it is in
    /// `arguments`).
    /// `elsewhere` says whether a result blob or argument object this cache
    /// does not hold is in the shared tier (taken lazily): such an entry is
    /// whole.
    pub(crate) fn verify(
        &self,
        entries: &[Listed],
        elsewhere: &dyn Fn(&Digest, u64) -> Result<bool>,
    ) -> Result<Damage> {
        let mut damage = Damage::default();
        for e in entries {
            let mut whole = e.record.objects().all(|(h, len)| self.object_ok(&h, len));
            for &(h, len) in e.manifest.iter().flat_map(|m| m.blobs.iter()) {
                if !whole {
                    break;
                }
                whole =
                    self.object_ok(&h, len) || (self.object_absent(&h, len) && elsewhere(&h, len)?);
            }
            if !whole {
                damage.results.push(e.key);
            }
            if let Some(m) = &e.manifest {
                // Here but altered. Absent is not damage: an entry taken
                // from the shared tier never had its arguments copied here
                // (a dispatched call's small arguments travel inside the
                // work item), and the index does not say which entries those
                // are.
                let (h, len) = m.args_object;
                if !self.object_ok(&h, len) && !self.object_absent(&h, len) {
                    damage.arguments.push(e.key);
                }
            }
        }
        Ok(damage)
    }

    /// Checks every compiled artefact against the hash recorded when it
    /// was written; the keys of those missing or altered.
    pub(crate) fn verify_compiled(&self) -> Result<Vec<Digest>> {
        Ok(self
            .compiled_entries()?
            .into_iter()
            .filter(|c| {
                fs::read(self.compiled_path(&c.key))
                    .map_or(true, |b| Digest::of(&b) != c.record.hash)
            })
            .map(|c| c.key)
            .collect())
    }

    /// How many input files the stat cache remembers.
    pub(crate) fn files_remembered(&self) -> Result<u64> {
        self.read(|tx| Ok(tx.open_table(FILES)?.len()?))
    }
}

/// Closures reachable from `roots` through stored closure nodes.
fn reachable(
    tx: &redb::WriteTransaction,
    roots: &HashSet<Digest>,
) -> std::result::Result<HashSet<Digest>, redb::Error> {
    let table = tx.open_table(CLOSURES)?;
    let mut seen = HashSet::new();
    let mut todo: Vec<Digest> = roots.iter().copied().collect();
    while let Some(c) = todo.pop() {
        if !seen.insert(c) {
            continue;
        }
        let node = table
            .get(c.as_bytes())?
            .and_then(|v| serde_json::from_str::<ClosureNode>(v.value()).ok());
        if let Some(node) = node {
            todo.extend(node.imports.iter().map(|(_, child)| *child));
        }
    }
    Ok(seen)
}

/// Every regular file under `dir`: path, length, modification time.
fn walk_files(dir: &std::path::Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(read) = fs::read_dir(&d) else { continue };
        for entry in read.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.is_file() {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.push((entry.path(), meta.len(), modified));
            }
        }
    }
    out
}
