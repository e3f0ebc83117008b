//! The cache as a whole, for people and tools: statistics, listing, showing
//! and removing entries, exporting results, audits that re-execute, and the
//! run history. (Eviction lives in [`crate::gc`].)
//!
//! Layer: the host façade (it adds to `Host`); reads the local store and
//! asks the call path for blobs held in a later tier.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::entry::{ClosureNode, KeyManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;
use crate::report::{CacheMode, CallOptions};
use crate::runs::RunRecord;
use crate::store::Listed;
use crate::task::Task;
use crate::value::{Blob, Value};

/// One stored result and what is known about it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Entry {
    /// The call key.
    pub key: Digest,
    /// What the key was made of; `None` for an entry written by another
    /// version of cairn.
    pub manifest: Option<KeyManifest>,
    /// When it was stored (ms since the epoch).
    pub created_ms: u64,
    /// When it expires (ms since the epoch), if ever.
    pub expires_ms: Option<u64>,
    /// How long the call took to execute, in microseconds: what each hit saves.
    pub run_us: u64,
    /// Bytes stored for it: value, result blobs, captured output.
    pub bytes: u64,
    /// The value's object: hash and length of its canonical encoding.
    pub value: (Digest, u64),
    /// Captured stdout (an object), if any.
    pub stdout: Option<(Digest, u64)>,
    /// Captured stderr (an object), if any.
    pub stderr: Option<(Digest, u64)>,
    /// How many times it answered a call.
    pub hits: u64,
    /// When it last did (ms since the epoch).
    pub last_hit_ms: Option<u64>,
}

impl Entry {
    pub(crate) fn of(l: Listed) -> Entry {
        Entry {
            key: l.key,
            manifest: l.manifest,
            created_ms: l.record.created_ms,
            expires_ms: l.record.expires_ms,
            run_us: l.record.run_us,
            bytes: l.record.bytes,
            value: (l.record.value, l.record.value_len),
            stdout: l.record.stdout,
            stderr: l.record.stderr,
            hits: l.usage.hits,
            last_hit_ms: Some(l.usage.last_hit_ms).filter(|&t| t > 0),
        }
    }

    /// When it was last stored or used (ms since the epoch).
    pub fn last_used_ms(&self) -> u64 {
        self.created_ms.max(self.last_hit_ms.unwrap_or(0))
    }

    /// The called task's name, or `?` if unknown.
    pub fn component(&self) -> &str {
        self.manifest.as_ref().map_or("?", |m| m.component.as_str())
    }

    /// The export path, or `?` if unknown.
    pub fn export(&self) -> &str {
        self.manifest.as_ref().map_or("?", |m| m.export.as_str())
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|t| t <= now_ms)
    }
}

/// The cache at a glance.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The cache directory.
    pub dir: std::path::PathBuf,
    /// Stored results.
    pub entries: u64,
    /// Of which expired (removed by the next `gc`).
    pub expired: u64,
    /// Bytes of stored values (canonical encodings).
    pub value_bytes: u64,
    /// Bytes of blobs inside stored values.
    pub blob_bytes: u64,
    /// Bytes of captured output.
    pub output_bytes: u64,
    /// Compiled artefacts and their bytes.
    pub compiled: (u64, u64),
    /// Compiled functions kept for components that share them (a language
    /// runtime's), and their bytes (inside the index).
    pub compiled_functions: (u64, u64),
    /// Size of the index file.
    pub index_bytes: u64,
    /// Size of the object files (large values, blobs and components).
    pub object_file_bytes: u64,
    /// Hits over the cache's life.
    pub hits: u64,
    /// Execution time those hits saved, in microseconds.
    pub saved_us: u64,
    /// Over the recent runs of the history: runs, calls, hits, executed, saved µs.
    pub recent: RecentRuns,
    /// Input files remembered by `stat`.
    pub files_remembered: u64,
    /// The size budget of the cache's `config.toml`, if set.
    pub budget: Option<u64>,
}

/// What the most recent runs did.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct RecentRuns {
    /// Runs counted (at most [`RecentRuns::WINDOW`]).
    pub runs: u64,
    /// Calls they made.
    pub calls: u64,
    /// Of which hits.
    pub hits: u64,
    /// Of which executed.
    pub executed: u64,
    /// Execution time the hits saved, in microseconds.
    pub saved_us: u64,
}

impl RecentRuns {
    /// How many runs "recent" means.
    pub const WINDOW: usize = 100;
}

/// How to write a result with [`Host::export`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// The bytes themselves: a blob's content (also of the one blob inside
    /// a value such as `result<blob, string>`), a string's UTF-8, a
    /// `list<u8>`; a value holding several blobs becomes a directory with
    /// one file per blob, named by its place in the value.
    Raw,
    /// JSON (blobs as `{"blob": HASH, "len": N}`).
    Json,
    /// WAVE, as `cairn run` prints it.
    Wave,
}

/// What [`Host::verify_with`] checks.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Check only this many entries, chosen at random.
    pub sample: Option<usize>,
    /// Also run the checked entries again (whole flows included, nothing
    /// read from or written to the cache) and compare the results.
    pub reexecute: bool,
}

/// What [`Host::verify_with`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Audit {
    /// Entries checked.
    pub checked: usize,
    /// Entries whose value, output or result blobs are missing or altered
    /// (each is a miss: the next call re-executes and repairs it). A result
    /// blob this cache never took from the connected shared tier is not
    /// missing.
    pub damaged: Vec<Digest>,
    /// Entries whose stored arguments (kept for `cache show`, `explain` and
    /// re-execution) are altered. (An entry taken from the shared tier may
    /// hold none here; that is not damage.) The result still answers its
    /// key; what it was called with can no longer be shown or repeated.
    /// `cairn cache rm KEY` and a new call restore them.
    pub damaged_arguments: Vec<Digest>,
    /// Compiled artefacts missing or altered (they are never loaded so: the
    /// component is compiled again when next run).
    pub damaged_compiled: Vec<Digest>,
    /// Entries re-executed.
    pub reexecuted: usize,
    /// Entries whose re-execution gave a different result: a
    /// non-deterministic task.
    pub differing: Vec<Digest>,
    /// Entries that could not be re-executed, and why.
    pub skipped: Vec<(Digest, String)>,
}

impl Host {
    /// Every stored result.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be read.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        Ok(self
            .calls
            .store
            .entries()?
            .into_iter()
            .map(Entry::of)
            .collect())
    }

    /// The entry whose key starts with `prefix` (at least 4 hex digits).
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] if no entry or several match.
    pub fn entry(&self, prefix: &str) -> Result<Entry> {
        let key = self.resolve_key(prefix)?;
        self.calls
            .store
            .entry(&key)?
            .map(Entry::of)
            .ok_or_else(|| no_entry(prefix))
    }

    /// The full key of the one entry starting with `prefix`.
    ///
    /// # Errors
    /// As [`Host::entry`].
    pub fn resolve_key(&self, prefix: &str) -> Result<Digest> {
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::new(
                ErrorKind::BadArguments,
                format!(
                    "`{prefix}` is not a key: give at least 4 hex digits (see `cairn cache ls`)"
                ),
            ));
        }
        match self.calls.store.keys_with_prefix(prefix)?.as_slice() {
            [one] => Ok(*one),
            [] => Err(no_entry(prefix)),
            many => Err(Error::new(
                ErrorKind::BadArguments,
                format!(
                    "{} entries start with {prefix}; give more digits",
                    many.len()
                ),
            )),
        }
    }

    /// Removes the entries under `keys`, then every object no remaining
    /// entry refers to. Input files are never touched. Returns the number of
    /// entries removed and the bytes freed.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be written.
    pub fn remove(&self, keys: &[Digest]) -> Result<(usize, u64)> {
        let removed = self.calls.store.remove(keys)?;
        let swept = self.calls.store.sweep(crate::gc::SWEEP_GRACE)?;
        Ok((removed, swept.bytes))
    }

    /// The cache at a glance.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be read.
    pub fn stats(&self) -> Result<Stats> {
        let store = &self.calls.store;
        let entries = self.entries()?;
        let now = self.calls.store.now_ms();
        let mut s = Stats {
            dir: store.dir().to_path_buf(),
            entries: entries.len() as u64,
            budget: crate::gc::Config::read(store.dir())?.max_size,
            ..Stats::default()
        };
        for e in &entries {
            let output = e.stdout.map_or(0, |o| o.1) + e.stderr.map_or(0, |o| o.1);
            s.value_bytes += e.value.1;
            s.output_bytes += output;
            s.blob_bytes += e.bytes.saturating_sub(e.value.1 + output);
            s.hits += e.hits;
            s.saved_us += e.hits * e.run_us;
            s.expired += u64::from(e.expired_at(now));
        }
        let compiled = store.compiled_entries()?;
        s.compiled = (
            compiled.len() as u64,
            compiled.iter().map(|c| c.record.len).sum(),
        );
        s.compiled_functions = store.functions_stored()?;
        (s.index_bytes, s.object_file_bytes, _) = store.disk_usage()?;
        for run in store.runs(RecentRuns::WINDOW)? {
            s.recent.runs += 1;
            s.recent.calls += run.calls.len() as u64;
            s.recent.hits += run.hits() as u64;
            s.recent.executed += run.executed() as u64;
            s.recent.saved_us += run.saved_us();
        }
        s.files_remembered = store.files_remembered()?;
        Ok(s)
    }

    /// The most recent `limit` runs, newest first.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be read.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.calls.store.runs(limit)
    }

    /// Run `id`, or the latest run for `None`.
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] if there is no such run.
    pub fn run(&self, id: Option<u64>) -> Result<RunRecord> {
        let found = match id {
            Some(id) => self.calls.store.run(id)?,
            None => self.calls.store.runs(1)?.pop(),
        };
        found.ok_or_else(|| {
            Error::new(
                ErrorKind::BadArguments,
                match id {
                    Some(id) => format!("no run {id} in the history; see `cairn runs`"),
                    None => "no run recorded yet; runs of `cairn run` are recorded".to_string(),
                },
            )
        })
    }

    /// Why each call of `run` missed (`None` for hits and for calls whose
    /// entry is gone), worked out from what the cache holds now: each
    /// miss's entry against the entries for its export stored before the run.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be read.
    pub fn explain_run(&self, run: &RunRecord) -> Result<Vec<Option<crate::explain::Explanation>>> {
        crate::explain::explain_run(&self.calls.store, run)
    }

    /// The value stored under `key`, decoded with its export's type.
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] if there is no such entry;
    /// [`ErrorKind::Cache`] if its value is gone or damaged, or its
    /// component's interface is unknown.
    pub fn stored_value(&self, key: &Digest) -> Result<Option<Value>> {
        let store = &self.calls.store;
        let entry = store.entry(key)?.ok_or_else(|| no_entry(&key.short()))?;
        let manifest = entry.manifest.ok_or_else(|| old_entry(key))?;
        let task = self.rebuild(&manifest.closure)?;
        let (_, ty) = task.resolve(&manifest.export)?;
        let Some(rt) = &ty.result else {
            return Ok(None);
        };
        let bytes = store
            .object(&entry.record.value, entry.record.value_len)?
            .ok_or_else(|| gone(key))?;
        crate::codec::from_bytes(&bytes, rt).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::Cache,
                format!("entry {key} does not decode: {e}"),
            )
        })
    }

    /// Writes the result stored under `key` to `to`, usable outside cairn.
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] for [`ExportFormat::Raw`] of a value
    /// that is not bytes and holds no blob; those of [`Host::stored_value`];
    /// [`ErrorKind::Io`] if `to` cannot be written.
    pub fn export(&self, key: &Digest, to: &Path, format: ExportFormat) -> Result<()> {
        let value = self.stored_value(key)?;
        let write = |bytes: &[u8]| {
            std::fs::write(to, bytes)
                .map_err(|e| Error::io(format_args!("cannot write {}", to.display()), e))
        };
        match (format, value) {
            (ExportFormat::Wave, v) => {
                write(format!("{}\n", v.as_ref().map_or(String::new(), Value::to_wave)).as_bytes())
            }
            (ExportFormat::Json, v) => {
                let json = v.as_ref().map_or(serde_json::Value::Null, to_json);
                write(format!("{json:#}\n").as_bytes())
            }
            (ExportFormat::Raw, Some(Value::Blob(b))) => self.write_blob(&b, to),
            (ExportFormat::Raw, Some(Value::String(s))) => write(s.as_bytes()),
            (ExportFormat::Raw, Some(Value::List(items)))
                if items.iter().all(|v| matches!(v, Value::U8(_))) =>
            {
                let bytes: Vec<u8> = items
                    .iter()
                    .map(|v| match v {
                        Value::U8(b) => *b,
                        _ => unreachable!("checked above"),
                    })
                    .collect();
                write(&bytes)
            }
            (ExportFormat::Raw, Some(v)) => match v.blobs_with_paths("result").as_slice() {
                [] => Err(Error::new(
                    ErrorKind::BadArguments,
                    "the result is neither bytes nor holds a blob; use --format json or wave",
                )),
                [(_, one)] => self.write_blob(one, to),
                _ => self.write_blobs(&v, to).map(drop),
            },
            (ExportFormat::Raw, None) => Err(Error::new(
                ErrorKind::BadArguments,
                "the export returns nothing; there is nothing to write",
            )),
        }
    }

    /// Writes every blob of `value` into directory `dir` (created if
    /// needed), one file per blob named by its place in the value
    /// (`result.ok`, `result.model`, …). Returns the files and their sizes.
    ///
    /// # Errors
    /// As [`Host::write_blob`].
    pub fn write_blobs(&self, value: &Value, dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format_args!("cannot create {}", dir.display()), e))?;
        let mut written = Vec::new();
        for (name, blob) in value.blobs_with_paths("result") {
            let path = dir.join(name);
            self.write_blob(&blob, &path)?;
            written.push((path, blob.len()));
        }
        Ok(written)
    }

    /// The task whose stored closure is `closure`, rebuilt from the
    /// components the cache holds.
    fn rebuild(&self, closure: &Digest) -> Result<Task> {
        let store = &self.calls.store;
        let bytes = |node: &ClosureNode| -> Result<Arc<[u8]>> {
            let bytes = store.object_any(&node.component)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Cache,
                    format!(
                        "component {} ({}) is not in the cache",
                        node.name,
                        node.component.short()
                    ),
                )
            })?;
            Ok(bytes.into())
        };
        self.rebuild_with(closure, &|c| store.closure(c), &bytes)
    }

    /// The task whose closure is `closure`, rebuilt from closure nodes
    /// (`node`) and component bytes (`bytes`, whose hash must be the node's).
    pub(crate) fn rebuild_with(
        &self,
        closure: &Digest,
        node: &dyn Fn(&Digest) -> Result<Option<ClosureNode>>,
        bytes: &dyn Fn(&ClosureNode) -> Result<Arc<[u8]>>,
    ) -> Result<Task> {
        let n = node(closure)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Cache,
                format!("closure {} is not in the cache", closure.short()),
            )
        })?;
        let code = bytes(&n)?;
        if Digest::of(&code) != n.component {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                format!("the bytes given for {} do not match its hash", n.name),
            ));
        }
        let mut task = self.load_bytes(&n.name, code)?.with_impure(n.impure);
        let bound = n
            .imports
            .iter()
            .map(|(import, child)| Ok((import.clone(), self.rebuild_with(child, node, bytes)?)))
            .collect::<Result<Vec<_>>>()?;
        task.set_bound(bound);
        Ok(task)
    }

    /// Audits every entry: values, captured output and result blobs must be
    /// present and match their hashes. Reads everything.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index itself cannot be read.
    pub fn verify(&self) -> Result<Audit> {
        self.verify_with(&VerifyOptions::default())
    }

    /// Audits the cache: each checked entry's value, captured output and
    /// result blobs must be present and match their hashes; with
    /// [`VerifyOptions::reexecute`], each is run again and must give the
    /// same result.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index itself cannot be read.
    pub fn verify_with(&self, opts: &VerifyOptions) -> Result<Audit> {
        let store = &self.calls.store;
        let mut entries = store.entries()?;
        if let Some(n) = opts.sample {
            use rand::seq::SliceRandom;
            entries.shuffle(&mut rand::rng());
            entries.truncate(n);
        }
        let damage = store.verify(&entries, &|hash, len| self.calls.remote_has_blob(hash, len))?;
        let mut audit = Audit {
            checked: entries.len(),
            damaged: damage.results,
            damaged_arguments: damage.arguments,
            damaged_compiled: store.verify_compiled()?,
            ..Audit::default()
        };
        if !opts.reexecute {
            return Ok(audit);
        }
        for e in &entries {
            if audit.damaged.contains(&e.key) || audit.damaged_arguments.contains(&e.key) {
                continue;
            }
            match self.reexecute(e) {
                Ok(same) => {
                    audit.reexecuted += 1;
                    if !same {
                        audit.differing.push(e.key);
                    }
                }
                Err(why) => audit.skipped.push((e.key, why.to_string())),
            }
        }
        Ok(audit)
    }

    /// Runs entry `e` again without the cache; whether its result is the
    /// stored one.
    fn reexecute(&self, e: &Listed) -> Result<bool> {
        let store = &self.calls.store;
        let m = e.manifest.as_ref().ok_or_else(|| old_entry(&e.key))?;
        if !m.grants.is_empty() {
            return Err(Error::new(
                ErrorKind::BadArguments,
                "it ran with grants, which an audit does not repeat",
            ));
        }
        let task = self.rebuild(&m.closure)?;
        let (_, ty) = task.resolve(&m.export)?;
        let params = crate::types::Type::Tuple(ty.params.iter().map(|(_, t)| t.clone()).collect());
        let encoded = store
            .object(&m.args_object.0, m.args_object.1)?
            .ok_or_else(|| gone(&e.key))?;
        let Ok(Value::Tuple(mut args)) = crate::codec::from_bytes(&encoded, &params) else {
            return Err(Error::new(ErrorKind::Cache, "its arguments do not decode"));
        };
        // Input files are not in the cache: find them where they were.
        let mut missing = None;
        for arg in &mut args {
            arg.for_each_blob_mut(&mut |b| {
                let Some((_, path)) = m.inputs.iter().find(|(h, _)| *h == b.hash()) else {
                    return;
                };
                match store.hash_file(path) {
                    Ok((hash, len, stamp)) if hash == b.hash() => {
                        *b = Blob::from_file(path, hash, len, stamp);
                    }
                    _ => missing = Some(path.clone()),
                }
            });
        }
        if let Some(path) = missing {
            return Err(Error::new(
                ErrorKind::Io,
                format!("input {} is gone or changed", path.display()),
            ));
        }
        let opts = CallOptions {
            cache: CacheMode::Off,
            ..CallOptions::default()
        };
        let out = self.call_with(&task, &m.export, &args, &opts)?;
        let encoded = match (&out.value, &ty.result) {
            (Some(v), Some(t)) => crate::codec::to_bytes(v, t)
                .map_err(|e| Error::internal(format!("result does not encode: {e}")))?,
            _ => Vec::new(),
        };
        Ok(Digest::of(&encoded) == e.record.value)
    }
}

fn no_entry(prefix: &str) -> Error {
    Error::new(
        ErrorKind::BadArguments,
        format!("no entry with key {prefix}; see `cairn cache ls`"),
    )
}

fn old_entry(key: &Digest) -> Error {
    Error::new(
        ErrorKind::Cache,
        format!(
            "entry {} was stored by another cairn version and has no manifest",
            key.short()
        ),
    )
}

fn gone(key: &Digest) -> Error {
    Error::new(
        ErrorKind::Cache,
        format!(
            "part of entry {} is missing or damaged; `cairn cache verify` lists such entries",
            key.short()
        ),
    )
}

/// A value as JSON: records as objects, lists and tuples as arrays,
/// variants as `{"case": payload}`, results as `{"ok": …}` / `{"err": …}`,
/// options as the value or `null`, flags as arrays of names, blobs as
/// `{"blob": HASH, "len": N}`; non-finite floats as strings.
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::{json, Value as J};
    let float = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(J::Number)
            .unwrap_or_else(|| J::String(x.to_string()))
    };
    let opt = |v: &Option<Box<Value>>| v.as_deref().map_or(J::Null, to_json);
    match v {
        Value::Bool(b) => json!(b),
        Value::S8(x) => json!(x),
        Value::S16(x) => json!(x),
        Value::S32(x) => json!(x),
        Value::S64(x) => json!(x),
        Value::U8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::F32(x) => float(f64::from(*x)),
        Value::F64(x) => float(*x),
        Value::Char(c) => json!(c.to_string()),
        Value::String(s) => json!(s),
        Value::List(vs) | Value::Tuple(vs) => J::Array(vs.iter().map(to_json).collect()),
        Value::Record(fs) => J::Object(fs.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Variant(case, payload) => json!({ case.as_str(): opt(payload) }),
        Value::Enum(case) => json!(case),
        Value::Option(v) => opt(v),
        Value::Result(Ok(v)) => json!({ "ok": opt(v) }),
        Value::Result(Err(v)) => json!({ "err": opt(v) }),
        Value::Flags(names) => json!(names),
        Value::Blob(b) => json!({ "blob": b.hash().to_hex(), "len": b.len() }),
    }
}

impl Host {
    /// What the run that produced `entry` wrote to stdout (or stderr), as text.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the output object is missing or damaged.
    pub fn captured_output(&self, entry: &Entry, stdout: bool) -> Result<String> {
        let Some((hash, len)) = (if stdout { entry.stdout } else { entry.stderr }) else {
            return Ok(String::new());
        };
        let bytes = self
            .calls
            .store
            .object(&hash, len)?
            .ok_or_else(|| gone(&entry.key))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reexecution_catches_a_result_the_task_does_not_give() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open(dir.path()).unwrap();
        let task = host.load_bytes("math", crate::testing::math()).unwrap();
        let out = host
            .call(&task, "add", &[Value::U32(1), Value::U32(2)])
            .unwrap();
        host.call(&task, "add", &[Value::U32(5), Value::U32(5)])
            .unwrap();
        let key = out.report.key;
        let audit = host
            .verify_with(&VerifyOptions {
                reexecute: true,
                ..VerifyOptions::default()
            })
            .unwrap();
        assert_eq!((audit.checked, audit.reexecuted), (2, 2));
        assert!(
            audit.differing.is_empty() && audit.skipped.is_empty(),
            "{audit:?}"
        );

        // Store 1 + 2 = 4 under the key, as a non-deterministic task might.
        let entry = host.calls.store.entry(&key).unwrap().unwrap();
        let wrong = crate::codec::to_bytes(&Value::U32(4), &crate::types::Type::U32).unwrap();
        host.calls
            .store
            .put_result(crate::store::NewEntry {
                key,
                value: &wrong,
                blobs: &[],
                run: std::time::Duration::from_millis(1),
                output: crate::store::Output::default(),
                expires_ms: None,
                manifest: entry.manifest.as_ref().unwrap(),
                args: b"",
                closures: Vec::new(),
            })
            .unwrap();
        assert_eq!(host.stored_value(&key).unwrap(), Some(Value::U32(4)));
        let audit = host
            .verify_with(&VerifyOptions {
                reexecute: true,
                ..VerifyOptions::default()
            })
            .unwrap();
        assert_eq!(audit.differing, [key]);
    }

    #[test]
    fn json_export_is_plain_json() {
        let v = Value::Record(vec![
            ("n".into(), Value::U64(u64::MAX)),
            (
                "r".into(),
                Value::Result(Err(Some(Box::new(Value::String("bad".into()))))),
            ),
            ("x".into(), Value::F64(f64::NAN)),
            ("o".into(), Value::Option(None)),
        ]);
        assert_eq!(
            to_json(&v).to_string(),
            r#"{"n":18446744073709551615,"r":{"err":"bad"},"x":"NaN","o":null}"#
        );
    }
}
