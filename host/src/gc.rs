//! Eviction: expired entries, entries unused for too long, and — to keep the
//! cache under a size budget — the entries that are cheapest to recompute per
//! byte they occupy, least recently used first. Objects no remaining entry
//! refers to are then deleted; input files are never touched.
//!
//! The score of an item (a stored result or a compiled artefact) is
//!
//! ```text
//! score = (cost µs + 1) / (bytes + 1) × (1 + ln(1 + hits)) / (1 + days since last use)
//! ```
//!
//! where cost is the execution (or compile) time the item saves on each use.
//! Under a budget, the lowest scores go first: a 3-second training run that
//! stores a 1 KiB model outlives a 10-millisecond step that stores 100 MiB.
//!
//! Layer: the host façade (it adds to `Host`); works on the local store.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;

/// Object files younger than this are never swept: another process may be
/// about to commit the entry that refers to them.
pub(crate) const SWEEP_GRACE: Duration = Duration::from_secs(60);

/// Compiled artefacts unused for this long go at every collection.
pub const COMPILED_MAX_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Settings kept in the cache directory's `config.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The size budget, applied after every `cairn run` (`max_size = "10GiB"`).
    #[serde(default, with = "size_text", skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// The shared tier every `cairn run` on this cache uses unless told
    /// otherwise (a `[remote]` table: `url`, `optional`, `creds`, `nkey`,
    /// `tls_ca`, `tls_cert`, `tls_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteSettings>,
}

/// The `[remote]` table of `config.toml`: where the shared tier is and how
/// to authenticate; see `RemoteConfig` (feature `remote`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RemoteSettings {
    /// `nats://HOST:PORT` or `tls://HOST:PORT`.
    pub url: String,
    /// Go on locally, with a warning, when the server cannot be reached.
    #[serde(default)]
    pub optional: bool,
    /// A NATS credentials file.
    pub creds: Option<std::path::PathBuf>,
    /// A file holding an nkey seed.
    pub nkey: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) for the server's TLS certificate.
    pub tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    pub tls_key: Option<std::path::PathBuf>,
}

/// `max_size` as text for people (`"10.0 GiB"`), read back with
/// [`crate::units::parse_size`].
mod size_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::units;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&units::size(*n)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| units::parse_size(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Config {
    fn path(dir: &Path) -> std::path::PathBuf {
        dir.join("config.toml")
    }

    /// Reads the cache's configuration (defaults if it has none).
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] naming the file if it does not parse.
    pub fn read(dir: &Path) -> Result<Config> {
        let path = Config::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                Error::new(
                    ErrorKind::BadArguments,
                    format!(
                        "{}: {} (fix or delete it)",
                        path.display(),
                        e.message().trim()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io(format_args!("cannot read {}", path.display()), e)),
        }
    }

    /// Writes the configuration to the cache directory.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if it cannot be written.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = Config::path(dir);
        let text = toml::to_string(self)
            .map_err(|e| Error::internal(format!("cannot encode the configuration: {e}")))?;
        std::fs::write(&path, text)
            .map_err(|e| Error::io(format_args!("cannot write {}", path.display()), e))
    }
}

/// What [`Host::gc`] removes.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct GcOptions {
    /// Evict until results and compiled artefacts take at most this many bytes.
    pub max_size: Option<u64>,
    /// Remove entries (and compiled artefacts) not used for this long.
    pub older_than: Option<Duration>,
    /// Decide, but remove nothing.
    pub dry_run: bool,
}

/// What [`Host::gc`] did.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// Entries removed: expired, too old, or evicted for the budget.
    pub removed: Vec<Digest>,
    /// Of those, how many had expired.
    pub expired: usize,
    /// Compiled artefacts removed.
    pub compiled_removed: usize,
    /// Compiled functions dropped (all of them, when the budget needed
    /// room: they are the first to go, since they only spare compiling).
    pub functions_removed: u64,
    /// Entries kept.
    pub kept: usize,
    /// Bytes of results, compiled artefacts and compiled functions before
    /// and after.
    pub size_before: u64,
    /// See [`GcReport::size_before`].
    pub size_after: u64,
    /// Bytes of objects and compiled files deleted from disk.
    pub freed: u64,
}

/// What compacting the index did: its file's size before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Compaction {
    /// Bytes of the index file before.
    pub before: u64,
    /// Bytes after.
    pub after: u64,
}

/// Something that can be evicted: a stored result or a compiled artefact.
enum Kind {
    Entry(Digest),
    Compiled(Digest),
    /// The whole table of compiled functions.
    Functions,
}

struct Item {
    kind: Kind,
    bytes: u64,
    score: f64,
}

/// The eviction score: higher is more worth keeping.
pub(crate) fn score(cost_us: u64, bytes: u64, hits: u64, idle_ms: u64) -> f64 {
    let days = idle_ms as f64 / 86_400_000.0;
    (cost_us as f64 + 1.0) / (bytes as f64 + 1.0) * (1.0 + (hits as f64).ln_1p()) / (1.0 + days)
}

impl Host {
    /// Closes this host and compacts its cache's index: a B-tree written
    /// copy-on-write keeps the pages of replaced versions for reuse, which
    /// after many writes is about half of the file (a million tiny entries:
    /// 2.1 GB, 0.95 GB compacted, in 13 s). `cairn cache gc` does it after
    /// collecting. Nothing is rewritten when less than a tenth of the file is
    /// free. Other processes may have the cache open; they wait while it
    /// runs. `Ok(None)` if one of them was in the middle of a transaction:
    /// nothing changed, try again later.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if calls are still running on this host (they
    /// keep the cache open), or the index cannot be read or written.
    pub fn compact(self) -> Result<Option<Compaction>> {
        self.flush()?;
        if std::sync::Arc::strong_count(&self.calls) > 1 {
            return Err(Error::new(
                ErrorKind::Cache,
                "cannot compact the cache while calls are running on its Host; wait for them to finish",
            ));
        }
        let dir = self.cache_dir().to_path_buf();
        drop(self);
        Ok(crate::store::compact(&dir)?.map(|(before, after)| Compaction { before, after }))
    }

    /// Collects garbage: removes expired entries, entries and compiled
    /// artefacts unused for [`GcOptions::older_than`] (compiled artefacts
    /// also after [`COMPILED_MAX_IDLE`]), then evicts by score until the
    /// rest fits [`GcOptions::max_size`], then deletes every object no entry
    /// refers to.
    ///
    /// # Errors
    /// [`ErrorKind::Cache`] if the index cannot be read or written.
    pub fn gc(&self, opts: &GcOptions) -> Result<GcReport> {
        let store = &self.calls.store;
        let now = store.now_ms();
        let idle_cut = |age: Duration| now.saturating_sub(age.as_millis() as u64);
        let entries = self.entries()?;
        let compiled = store.compiled_entries()?;
        let mut report = GcReport::default();
        let mut items = Vec::new();
        for e in &entries {
            let expired = e.expired_at(now);
            let stale = opts
                .older_than
                .is_some_and(|age| e.last_used_ms() < idle_cut(age));
            if expired || stale {
                report.removed.push(e.key);
                report.expired += usize::from(expired);
            } else {
                items.push(Item {
                    kind: Kind::Entry(e.key),
                    bytes: e.bytes,
                    score: score(
                        e.run_us,
                        e.bytes,
                        e.hits,
                        now.saturating_sub(e.last_used_ms()),
                    ),
                });
            }
            report.size_before += e.bytes;
        }
        let compiled_idle = opts
            .older_than
            .unwrap_or(COMPILED_MAX_IDLE)
            .min(COMPILED_MAX_IDLE);
        let mut compiled_gone = Vec::new();
        for c in &compiled {
            let r = &c.record;
            report.size_before += r.len;
            if r.last_used_ms < idle_cut(compiled_idle) {
                compiled_gone.push(c.key);
            } else {
                items.push(Item {
                    kind: Kind::Compiled(c.key),
                    bytes: r.len,
                    score: score(r.compile_us, r.len, 0, now.saturating_sub(r.last_used_ms)),
                });
            }
        }
        let (functions, function_bytes) = store.functions_stored()?;
        report.size_before += function_bytes;
        if functions > 0 {
            items.push(Item {
                kind: Kind::Functions,
                bytes: function_bytes,
                score: f64::NEG_INFINITY,
            });
        }
        let mut size: u64 = items.iter().map(|i| i.bytes).sum();
        if let Some(budget) = opts.max_size {
            items.sort_by(|a, b| a.score.total_cmp(&b.score));
            let mut keep = Vec::new();
            for item in items {
                if size > budget {
                    size -= item.bytes;
                    match item.kind {
                        Kind::Entry(key) => report.removed.push(key),
                        Kind::Compiled(key) => compiled_gone.push(key),
                        Kind::Functions => report.functions_removed = functions,
                    }
                } else {
                    keep.push(item);
                }
            }
            items = keep;
        }
        report.kept = items
            .iter()
            .filter(|i| matches!(i.kind, Kind::Entry(_)))
            .count();
        report.compiled_removed = compiled_gone.len();
        report.size_after = size;
        if opts.dry_run {
            return Ok(report);
        }
        store.remove(&report.removed)?;
        let freed_compiled: u64 = compiled
            .iter()
            .filter(|c| compiled_gone.contains(&c.key))
            .map(|c| c.record.len)
            .sum();
        store.remove_compiled(&compiled_gone)?;
        let mut freed_functions = 0;
        if report.functions_removed > 0 {
            store.clear_functions()?;
            freed_functions = function_bytes;
        }
        report.freed = store.sweep(SWEEP_GRACE)?.bytes + freed_compiled + freed_functions;
        Ok(report)
    }

    /// Applies the size budget of the cache's `config.toml`, if it sets one.
    /// Returns what was done, or `None` without a budget.
    ///
    /// # Errors
    /// As [`Host::gc`]; [`ErrorKind::BadArguments`] if `config.toml` does
    /// not parse.
    pub fn apply_budget(&self) -> Result<Option<GcReport>> {
        let Some(max_size) = Config::read(self.cache_dir())?.max_size else {
            return Ok(None);
        };
        self.gc(&GcOptions {
            max_size: Some(max_size),
            ..GcOptions::default()
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn expensive_small_recent_results_score_higher() {
        let day = 86_400_000;
        assert!(score(3_000_000, 1024, 0, 0) > score(10_000, 100 << 20, 0, 0));
        assert!(score(1000, 1000, 0, 0) > score(1000, 1000, 0, 30 * day));
        assert!(score(1000, 1000, 10, 0) > score(1000, 1000, 0, 0));
    }

    /// A host whose cache holds one result per `(key text, run time)`,
    /// each with a 1000-byte value, stored at the time `clock` shows.
    fn cache_at(
        clock: &ManualClock,
        entries: &[(&str, Duration)],
    ) -> (tempfile::TempDir, Host, Vec<Digest>) {
        use crate::entry::KeyManifest;
        use crate::store::{NewEntry, Output};
        let dir = tempfile::tempdir().unwrap();
        let host = Host::open_with_clock(
            dir.path(),
            crate::Limits::default(),
            std::sync::Arc::new(clock.clone()),
        )
        .unwrap();
        let mut keys = Vec::new();
        for (name, run) in entries {
            let key = Digest::of(name.as_bytes());
            let value = vec![name.as_bytes()[0]; 1000];
            let manifest = KeyManifest {
                component: name.to_string(),
                closure: Digest::of(b"c"),
                export: "f".into(),
                signature: "func()".into(),
                args: Vec::new(),
                sandbox: Digest::of(b"s"),
                grants: Vec::new(),
                args_object: (Digest::of(b""), 0),
                blobs: Vec::new(),
                inputs: Vec::new(),
            };
            host.calls
                .store
                .put_result(NewEntry {
                    key,
                    value: &value,
                    blobs: &[],
                    run: *run,
                    output: Output::default(),
                    expires_ms: None,
                    manifest: &manifest,
                    args: b"",
                    closures: Vec::new(),
                })
                .unwrap();
            keys.push(key);
        }
        (dir, host, keys)
    }

    /// [`cache_at`] a fixed time.
    fn cache_with(entries: &[(&str, Duration)]) -> (tempfile::TempDir, Host, Vec<Digest>) {
        cache_at(&ManualClock::at_ms(DAY_MS), entries)
    }

    const DAY_MS: u64 = 24 * 3600 * 1000;

    #[test]
    fn compaction_returns_free_pages_and_keeps_every_entry() {
        let names: Vec<String> = (0..3000).map(|i| format!("entry {i}")).collect();
        let entries: Vec<(&str, Duration)> = names
            .iter()
            .map(|n| (n.as_str(), Duration::from_millis(1)))
            .collect();
        let (dir, host, keys) = cache_with(&entries);
        host.flush().unwrap();
        assert_eq!(host.remove(&keys[..2700]).unwrap().0, 2700);
        let c = host
            .compact()
            .unwrap()
            .expect("no other process has it open");
        assert!(c.after < c.before / 2, "{c:?}");
        assert_eq!(
            std::fs::metadata(dir.path().join("index.redb"))
                .unwrap()
                .len(),
            c.after
        );
        let host = Host::open(dir.path()).unwrap();
        assert_eq!(host.entries().unwrap().len(), 300);
        for key in &keys[2700..] {
            let (_, value) = host.calls.store.stored_value(key).unwrap().expect("kept");
            assert_eq!(value, [b'e'; 1000]);
        }
        let again = host.compact().unwrap().unwrap();
        assert_eq!(
            (again.before, again.after),
            (c.after, c.after),
            "a compact index is left alone"
        );
    }

    #[test]
    fn a_budget_keeps_the_expensive_entry_and_drops_the_cheap_one() {
        let (_dir, host, keys) = cache_with(&[
            ("training", Duration::from_secs(5)),
            ("parse", Duration::from_millis(1)),
        ]);
        let r = host
            .gc(&GcOptions {
                max_size: Some(1500),
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(r.removed, [keys[1]], "the cheap entry goes");
        assert_eq!((r.kept, r.size_before, r.size_after), (1, 2000, 1000));
        let left: Vec<Digest> = host.entries().unwrap().iter().map(|e| e.key).collect();
        assert_eq!(left, [keys[0]]);
        assert!(r.freed >= 1000, "the dropped value is deleted: {r:?}");
    }

    #[test]
    fn compiled_functions_count_in_the_budget_and_go_first() {
        let (_dir, host, keys) = cache_with(&[("training", Duration::from_secs(5))]);
        let store = &host.calls.store;
        store
            .put_functions(&[(b"f".to_vec(), vec![7; 600])])
            .unwrap();
        let within = host
            .gc(&GcOptions {
                max_size: Some(4000),
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(within.functions_removed, 0, "{within:?}");
        assert!(within.size_before > 1600, "counted: {within:?}");
        let over = host
            .gc(&GcOptions {
                max_size: Some(1200),
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(
            (over.functions_removed, over.removed.len()),
            (1, 0),
            "{over:?}"
        );
        assert_eq!(store.functions_stored().unwrap().0, 0);
        let left: Vec<Digest> = host.entries().unwrap().iter().map(|e| e.key).collect();
        assert_eq!(left, keys, "the result stays");
    }

    #[test]
    fn recency_and_dry_runs() {
        let clock = ManualClock::at_ms(DAY_MS);
        let (_dir, host, keys) = cache_at(
            &clock,
            &[
                ("a", Duration::from_millis(3)),
                ("b", Duration::from_millis(3)),
            ],
        );
        // Equal cost and size: the one used more recently stays.
        clock.advance(Duration::from_millis(3 * DAY_MS));
        host.calls.store.hit(&keys[0]);
        let opts = GcOptions {
            max_size: Some(1000),
            dry_run: true,
            ..GcOptions::default()
        };
        assert_eq!(host.gc(&opts).unwrap().removed, [keys[1]]);
        assert_eq!(
            host.entries().unwrap().len(),
            2,
            "a dry run removes nothing"
        );
        // Unused for more than a day: b (stored three days ago), not a
        // (used just now).
        let old = GcOptions {
            older_than: Some(Duration::from_millis(DAY_MS)),
            ..GcOptions::default()
        };
        assert_eq!(
            host.gc(&old).unwrap().removed,
            [keys[1]],
            "b was not used since it was stored"
        );
    }

    #[test]
    fn config_reads_sizes_for_people() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::read(dir.path()).unwrap(), Config::default());
        let c = Config {
            max_size: Some(10 << 30),
            remote: Some(RemoteSettings {
                url: "nats://127.0.0.1:4222".into(),
                optional: true,
                ..RemoteSettings::default()
            }),
        };
        c.write(dir.path()).unwrap();
        assert_eq!(Config::read(dir.path()).unwrap(), c);
        std::fs::write(dir.path().join("config.toml"), "max_size = \"lots\"\n").unwrap();
        let err = Config::read(dir.path()).unwrap_err();
        assert!(err.to_string().contains("config.toml"), "{err}");
    }
}
