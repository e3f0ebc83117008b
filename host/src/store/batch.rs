//! A batch of writes for one commit of the index, and how it is written.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use redb::ReadableTable;

use super::record::Usage;
use super::tables::*;
use crate::digest::Digest;
use crate::runs::RunRecord;

/// How many runs the history keeps; older ones are dropped as new ones come.
pub(crate) const RUNS_KEPT: u64 = 10_000;

/// A finished run as the history stores it, JSON, numbered 0 until it is
/// appended: encoded once, on the thread that ran it, and copied as text
/// through the statistics log into the history table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunJson(String);

impl RunJson {
    /// How every unnumbered record begins (`id` is [`RunRecord`]'s first
    /// field); numbering replaces the 0.
    const UNNUMBERED: &'static str = "{\"id\":0,";

    pub(crate) fn of(mut run: RunRecord) -> RunJson {
        run.id = 0;
        let json = serde_json::to_string(&run).expect("a run record encodes");
        assert!(
            json.starts_with(Self::UNNUMBERED),
            "RunRecord's first field is its id"
        );
        RunJson(json)
    }

    /// Text read back from the log: `None` unless it is one whole JSON value
    /// in the unnumbered form (a line torn by a crash is not).
    pub(crate) fn parse(text: &str) -> Option<RunJson> {
        let whole = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        (whole && text.starts_with(Self::UNNUMBERED)).then(|| RunJson(text.to_string()))
    }

    /// Text known to be one whole record (its hash matched): `None` unless
    /// it is in the unnumbered form.
    pub(crate) fn trusted(text: &str) -> Option<RunJson> {
        text.starts_with(Self::UNNUMBERED)
            .then(|| RunJson(text.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The record numbered `id`: what the history table holds.
    fn numbered(&self, id: u64) -> String {
        let rest = &self.0[Self::UNNUMBERED.len()..];
        format!("{{\"id\":{id},{rest}")
    }
}

/// How many bytes of records the history keeps: a batch's one run holds all
/// its calls (a 20,000-line `--batch` is ~5 MB), so a count alone does not
/// bound it. The newest run always stays.
pub(crate) const RUNS_BYTES_KEPT: u64 = 64 << 20;

/// META rows: the history's bytes, and the first and last run they count
/// (another cairn may have changed the table since: then they are counted
/// again).
const RUNS_BYTES: [&str; 3] = ["runs_bytes", "runs_bytes_first", "runs_bytes_last"];

/// Appends `runs` to the history in `tx`, numbering them after the last,
/// then drops the oldest beyond [`RUNS_KEPT`] runs or [`RUNS_BYTES_KEPT`].
pub(crate) fn append_runs(
    tx: &redb::WriteTransaction,
    runs: &[RunJson],
) -> std::result::Result<(), redb::Error> {
    append_runs_within(tx, runs, (RUNS_KEPT, RUNS_BYTES_KEPT))
}

/// [`append_runs`], keeping at most `kept.0` runs and `kept.1` bytes.
fn append_runs_within(
    tx: &redb::WriteTransaction,
    runs: &[RunJson],
    (most_runs, most_bytes): (u64, u64),
) -> std::result::Result<(), redb::Error> {
    let mut table = tx.open_table(RUNS)?;
    let mut meta = tx.open_table(META)?;
    let id = |row: Option<(redb::AccessGuard<u64>, redb::AccessGuard<&str>)>| {
        row.map_or(0, |(k, _)| k.value())
    };
    let (first, last) = (id(table.first()?), id(table.last()?));
    let mut counted = [0; 3];
    for (n, name) in counted.iter_mut().zip(RUNS_BYTES) {
        *n = meta.get(name)?.map_or(u64::MAX, |v| v.value());
    }
    let mut bytes = match counted {
        [bytes, f, l] if (f, l) == (first, last) => bytes,
        _ => table
            .iter()?
            .map(|row| row.map(|(_, v)| v.value().len() as u64))
            .sum::<std::result::Result<u64, _>>()?,
    };
    let mut next = last + 1;
    for run in runs {
        let text = run.numbered(next);
        bytes += text.len() as u64;
        table.insert(next, text.as_str())?;
        next += 1;
    }
    loop {
        let front = table.first()?;
        let Some((oldest, len)) = front.map(|(k, v)| (k.value(), v.value().len() as u64)) else {
            break;
        };
        let kept = next - oldest;
        if kept <= 1 || (kept <= most_runs && bytes <= most_bytes) {
            break;
        }
        table.remove(oldest)?;
        bytes = bytes.saturating_sub(len);
    }
    let (first, last) = (id(table.first()?), id(table.last()?));
    for (name, n) in RUNS_BYTES.into_iter().zip([bytes, first, last]) {
        meta.insert(name, n)?;
    }
    Ok(())
}

/// Writes waiting for the same commit.
#[derive(Default)]
pub(crate) struct Batch {
    /// Call key → record bytes (header and manifest).
    pub(crate) results: HashMap<Digest, Arc<[u8]>>,
    /// Objects small enough to live in the index.
    pub(crate) objects: HashMap<Digest, Arc<[u8]>>,
    /// (export, created ms, key) rows of the export index.
    pub(crate) by_export: Vec<(String, u64, Digest)>,
    /// Closure → [`crate::entry::ClosureNode`] JSON.
    pub(crate) closures: HashMap<Digest, String>,
    /// Hits to add to each key's usage.
    pub(crate) usage: HashMap<Digest, Usage>,
    /// Compiled artefact key → when it was last loaded.
    pub(crate) compiled_used: HashMap<Digest, u64>,
    /// Stat-cache entries: absolute path → entry bytes.
    pub(crate) files: HashMap<String, Vec<u8>>,
    /// Finished runs, numbered when they commit.
    pub(crate) runs: Vec<RunJson>,
    /// Compiled functions: row key → entry (see [`super::functions`]).
    pub(crate) functions: HashMap<Digest, Arc<[u8]>>,
    /// Compiled artefact key → record (its file is written, not synced:
    /// checked against the record's hash when loaded).
    pub(crate) compiled: HashMap<Digest, Vec<u8>>,
    /// Component hash → its interface, encoded
    /// ([`crate::component::Interface`]).
    pub(crate) components: HashMap<Digest, Vec<u8>>,
    /// Directories whose new entries (object and artefact files, other
    /// directories) must be durable before anything in the batch is: synced
    /// once each, before the commit (see [`Batch::sync_dirs`]).
    pub(crate) dirs: BTreeSet<PathBuf>,
}

impl Batch {
    /// Whether the batch holds statistics only (hit counts, last-use times,
    /// runs): nothing worth an fsync, and nothing that needs writing before
    /// the next commit, a flush, or the queue's delay.
    pub(crate) fn is_lazy_only(&self) -> bool {
        !self.needs_commit() && self.dirs.is_empty()
    }

    /// Whether the batch holds anything for the index but statistics
    /// (directories to sync alone need no commit).
    pub(crate) fn needs_commit(&self) -> bool {
        !(self.results.is_empty()
            && self.objects.is_empty()
            && self.by_export.is_empty()
            && self.closures.is_empty()
            && self.files.is_empty()
            && self.functions.is_empty()
            && self.compiled.is_empty()
            && self.components.is_empty())
    }

    /// Syncs the directories the batch names, each once: the files and
    /// directories made in them become durable before any index entry that
    /// names them does. The first failure stops the batch (nothing of it is
    /// committed).
    pub(crate) fn sync_dirs(&self) -> std::io::Result<()> {
        for dir in &self.dirs {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        }
        Ok(())
    }

    /// Whether the batch holds results or statistics: what should reach
    /// the index (or the log) soon, not only what spares work.
    pub(crate) fn is_urgent(&self) -> bool {
        !(self.results.is_empty()
            && self.objects.is_empty()
            && self.by_export.is_empty()
            && self.closures.is_empty())
            || self.has_stats()
    }

    /// Whether the batch holds statistics.
    pub(crate) fn has_stats(&self) -> bool {
        !(self.usage.is_empty() && self.compiled_used.is_empty() && self.runs.is_empty())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.is_lazy_only() && !self.has_stats()
    }

    /// Adds `u` to the usage of `key`.
    pub(crate) fn add_usage(&mut self, key: Digest, u: Usage) {
        self.usage.entry(key).or_default().merge(u);
    }

    /// Records that compiled artefact `key` was loaded at `used_ms`.
    pub(crate) fn add_compiled(&mut self, key: Digest, used_ms: u64) {
        let t = self.compiled_used.entry(key).or_default();
        *t = (*t).max(used_ms);
    }

    /// Writes the batch in `tx`.
    pub(crate) fn write(&self, tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
        insert_all(tx, FUNCTIONS, &self.functions, |v| &v[..])?;
        insert_all(tx, COMPILED, &self.compiled, |v| &v[..])?;
        insert_all(tx, INTERFACES, &self.components, |v| &v[..])?;
        insert_all(tx, OBJECTS, &self.objects, |v| &v[..])?;
        insert_all(tx, RESULTS, &self.results, |v| &v[..])?;
        let mut by_export = tx.open_table(BY_EXPORT)?;
        for (export, created, key) in &self.by_export {
            by_export.insert((export.as_str(), *created, key.as_bytes()), ())?;
        }
        insert_all(tx, CLOSURES, &self.closures, String::as_str)?;
        let mut usage = tx.open_table(USAGE)?;
        for (key, add) in &self.usage {
            let mut u = usage
                .get(key.as_bytes())?
                .map(|v| Usage::from_bytes(v.value()))
                .unwrap_or_default();
            u.merge(*add);
            usage.insert(key.as_bytes(), &u.to_bytes())?;
        }
        let mut compiled = tx.open_table(COMPILED)?;
        // After the records of this batch: a new artefact loaded since counts.
        for (key, used) in &self.compiled_used {
            let found = compiled
                .get(key.as_bytes())?
                .and_then(|v| super::record::CompiledRecord::from_bytes(v.value()));
            if let Some(mut r) = found {
                r.last_used_ms = r.last_used_ms.max(*used);
                compiled.insert(key.as_bytes(), &r.to_bytes()[..])?;
            }
        }
        let mut files = tx.open_table(FILES)?;
        for (path, entry) in &self.files {
            files.insert(path.as_str(), &entry[..])?;
        }
        if !self.runs.is_empty() {
            append_runs(tx, &self.runs)?;
        }
        Ok(())
    }
}

/// Inserts `rows` into `table`, each value as `view` shows it.
fn insert_all<V: redb::Value + 'static, T>(
    tx: &redb::WriteTransaction,
    table: redb::TableDefinition<&'static [u8; 32], V>,
    rows: &HashMap<Digest, T>,
    view: impl for<'a> Fn(&'a T) -> V::SelfType<'a>,
) -> Result<(), redb::Error> {
    let mut table = tx.open_table(table)?;
    for (key, value) in rows {
        table.insert(key.as_bytes(), view(value))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    #[test]
    fn the_history_keeps_the_newest_runs_within_its_count_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("i.redb")).unwrap();
        let run = |error: &str| {
            let r = RunRecord::of(&[], std::time::Instant::now(), Some(error.into()), 1);
            RunJson::of(r)
        };
        let append = |runs: &[RunJson], kept| {
            let tx = db.begin_write().unwrap();
            append_runs_within(&tx, runs, kept).unwrap();
            tx.commit().unwrap();
        };
        let ids = || -> Vec<u64> {
            let tx = db.begin_read().unwrap();
            let table = tx.open_table(RUNS).unwrap();
            table
                .iter()
                .unwrap()
                .map(|r| r.unwrap().0.value())
                .collect()
        };
        let size = run("a").as_str().len() as u64; // each numbered record: +1
        append(&[run("a"), run("b"), run("c")], (10, 1 << 20));
        assert_eq!(ids(), [1, 2, 3]);
        append(&[run("d")], (3, 1 << 20));
        assert_eq!(ids(), [2, 3, 4], "by count");
        append(&[run("e")], (10, 2 * size + 2));
        assert_eq!(ids(), [4, 5], "by bytes");
        // Another cairn (an older one) adds a run without counting it.
        let tx = db.begin_write().unwrap();
        tx.open_table(RUNS)
            .unwrap()
            .insert(6, "x".repeat(100).as_str())
            .unwrap();
        tx.commit().unwrap();
        append(&[run("f")], (10, 2 * size + 2 + 100));
        assert_eq!(ids(), [5, 6, 7], "counted again");
        append(&[run("g")], (10, 1));
        assert_eq!(ids(), [8], "the newest stays, however large");
        let tx = db.begin_read().unwrap();
        assert_eq!(tx.open_table(RUNS).unwrap().len().unwrap(), 1);
    }

    #[test]
    fn a_numbered_run_is_the_record_encoded_with_its_id() {
        let mut run = RunRecord::of(&[], std::time::Instant::now(), Some("e\"r".into()), 7);
        let json = RunJson::of(run.clone());
        assert_eq!(RunJson::parse(json.as_str()), Some(json.clone()));
        assert_eq!(RunJson::parse(&json.as_str()[..20]), None, "torn");
        run.id = 42;
        assert_eq!(json.numbered(42), serde_json::to_string(&run).unwrap());
    }
}
