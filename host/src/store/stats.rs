//! Statistics that are not worth an fsync: hit counts, last-use times of
//! compiled code, and the run history. A process that writes nothing else
//! (a pure hit) appends them to `stats.log` in the cache directory, without
//! syncing; the next durable commit of the index, by any process, takes the
//! log and writes its content in the same transaction (see
//! [`super::index`]).
//!
//! One JSON object a line. Each append is one `write` under an exclusive
//! lock on the file, and starts with a newline, so a record torn by a crash
//! spoils only itself: it does not parse and is skipped. A crash (or a
//! failed commit) may lose the statistics of a fold, or, on a power loss
//! at the wrong moment, apply them twice; results are never in the log.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::batch::{Batch, RunJson};
use super::record::Usage;
use crate::digest::Digest;

/// The log's name in the cache directory.
pub(crate) const LOG: &str = "stats.log";

/// A log this large is folded into the index by the process that grew it,
/// even if it writes nothing else: one durable commit per 4 MiB of
/// statistics (about 10,000 runs, what the history keeps).
pub(crate) const FOLD_AT: u64 = 4 << 20;

/// How a run's line begins; the run's own JSON follows, then `}`. Runs are
/// copied as text (see [`RunJson`]), not decoded and encoded again.
const RUN: &str = "{\"run\":";

/// One line of the log, other than a run's.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// Hits of a result, and the last one's time.
    Hit {
        key: Digest,
        hits: u64,
        last_ms: u64,
    },
    /// A compiled artefact was loaded at `used_ms`.
    Compiled { key: Digest, used_ms: u64 },
}

/// The statistics of `batch` as log text: an empty string if it holds none.
fn encode(batch: &Batch) -> String {
    let hits = batch.usage.iter().map(|(key, u)| Line::Hit {
        key: *key,
        hits: u.hits,
        last_ms: u.last_hit_ms,
    });
    let compiled = (batch.compiled_used.iter()).map(|(key, used)| Line::Compiled {
        key: *key,
        used_ms: *used,
    });
    let mut text = String::new();
    for line in hits.chain(compiled) {
        text.push('\n');
        text.push_str(&serde_json::to_string(&line).expect("a statistics line encodes"));
    }
    for run in &batch.runs {
        text.push('\n');
        text.push_str(RUN);
        text.push_str(run.as_str());
        text.push('}');
    }
    text
}

/// Adds the statistics in log `text` to `batch`; lines that do not parse
/// (torn by a crash) are skipped.
fn decode(text: &[u8], batch: &mut Batch) {
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let run = (line.strip_prefix(RUN.as_bytes()))
            .and_then(|l| l.strip_suffix(b"}"))
            .map(|json| std::str::from_utf8(json).ok().and_then(RunJson::parse));
        match run {
            Some(Some(run)) => batch.runs.push(run),
            Some(None) => tracing::debug!("skipping a damaged run in the statistics log"),
            None => decode_line(line, batch),
        }
    }
}

/// Adds one hit or last-use line to `batch`.
fn decode_line(line: &[u8], batch: &mut Batch) {
    match serde_json::from_slice(line) {
        Ok(Line::Hit { key, hits, last_ms }) => batch.usage.entry(key).or_default().merge(Usage {
            hits,
            last_hit_ms: last_ms,
        }),
        Ok(Line::Compiled { key, used_ms }) => {
            let t = batch.compiled_used.entry(key).or_default();
            *t = (*t).max(used_ms);
        }
        Err(_) => tracing::debug!("skipping a damaged line of the statistics log"),
    }
}

/// Appends the statistics of `batch` to the log in `dir`, unsynced.
/// Returns the log's length after the append.
pub(crate) fn append(dir: &Path, batch: &Batch) -> io::Result<u64> {
    let text = encode(batch);
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(LOG))?;
    file.lock()?;
    file.write_all(text.as_bytes())?;
    file.metadata().map(|m| m.len())
}

/// Whether the log in `dir` holds anything.
pub(crate) fn pending(dir: &Path) -> bool {
    fs::metadata(dir.join(LOG)).is_ok_and(|m| m.len() > 0)
}

/// Takes everything in the log in `dir`, leaving it empty. The caller writes
/// it in a transaction it is about to commit. A log that cannot be read is
/// left alone (to be taken next time); one read but not emptied is not
/// used, so that nothing is counted twice.
pub(crate) fn take(dir: &Path) -> Batch {
    let mut batch = Batch::default();
    let mut file = match OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(LOG))
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return batch,
        Err(e) => {
            tracing::warn!("cannot open the statistics log: {e}");
            return batch;
        }
    };
    let mut text = Vec::new();
    let taken = (|| -> io::Result<()> {
        file.lock()?;
        if file.metadata()?.len() == 0 {
            return Ok(());
        }
        file.read_to_end(&mut text)?;
        file.set_len(0)
    })();
    drop(file);
    match taken {
        Ok(()) => decode(&text, &mut batch),
        Err(e) => tracing::warn!("cannot take the statistics log: {e}"),
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(error: &str) -> RunJson {
        RunJson::of(crate::runs::RunRecord::of(
            &[],
            std::time::Instant::now(),
            Some(error.into()),
            1,
        ))
    }

    #[test]
    fn appended_statistics_are_taken_once_and_torn_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(take(dir.path()).runs.is_empty(), "no log: nothing to take");
        let key = Digest::of(b"k");
        let mut b = Batch::default();
        b.usage.insert(
            key,
            Usage {
                hits: 2,
                last_hit_ms: 5,
            },
        );
        b.compiled_used.insert(key, 7);
        b.runs.push(run("first"));
        append(dir.path(), &b).unwrap();
        // A record torn by a crash, then another append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG))
            .unwrap();
        f.write_all(b"\n{\"hit\":{\"key\":").unwrap();
        b.runs = vec![run("second")];
        b.compiled_used.clear();
        assert!(append(dir.path(), &b).unwrap() > 0);
        assert!(pending(dir.path()));
        let taken = take(dir.path());
        assert_eq!(taken.usage[&key].hits, 4);
        assert_eq!(taken.usage[&key].last_hit_ms, 5);
        assert_eq!(taken.compiled_used[&key], 7);
        let error = |r: &RunJson| {
            let record: crate::runs::RunRecord = serde_json::from_str(r.as_str()).unwrap();
            record.error
        };
        let errors: Vec<_> = taken.runs.iter().map(error).collect();
        assert_eq!(errors, [Some("first".into()), Some("second".into())]);
        assert!(!pending(dir.path()));
        assert!(take(dir.path()).usage.is_empty());
    }
}
