//! Statistics that are not worth an fsync: hit counts, last-use times of
//! compiled code, and the run history. A process that writes nothing else
//! (a pure hit) appends them to `stats.v2.log` in the cache directory, without
//! syncing; the next durable commit of the index, by any process, takes the
//! log and writes its content in the same transaction (see
//! [`super::index`]).
//!
//! One record a line, in text that costs little to write and to read
//! back (a `--batch` of hits appends thousands):
//!
//! - `h KEY HITS LAST_MS;` hits of a result, and the last one's time;
//! - `c KEY USED_MS;` a compiled artefact was loaded;
//! - `r LEN HASH JSON` a finished run: its JSON ([`RunJson`], copied as
//!   text, not decoded and encoded again), `LEN` bytes whose blake3 is
//!   `HASH`, so that a record need not be parsed to be trusted.
//!
//! Each append is one `write` under an exclusive lock on the file, and
//! starts with a newline, so a record torn by a crash spoils only itself:
//! it lacks its `;` or its length, or its hash does not match (as neither
//! does a block of zeros a power loss may leave), and is skipped. A crash
//! (or a failed commit) may lose the statistics of a fold, or, on a power
//! loss at the wrong moment, apply them twice; results are never in the
//! log. The JSON lines an earlier cairn appends to `stats.log` are taken
//! too.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use serde::Deserialize;

use super::batch::{Batch, RunJson};
use super::record::Usage;
use crate::digest::Digest;

/// The log's name in the cache directory.
pub(crate) const LOG: &str = "stats.v2.log";

/// The log of JSON lines an earlier cairn appends (to which the lines above
/// would be damage: it would drop them). Taken with [`LOG`].
const JSON_LOG: &str = "stats.log";

/// A log this large is folded into the index by the process that grew it,
/// even if it writes nothing else: one durable commit per 4 MiB of
/// statistics (about 10,000 runs, what the history keeps).
pub(crate) const FOLD_AT: u64 = 4 << 20;

/// How an earlier cairn began a run's line; the run's JSON followed, then `}`.
const JSON_RUN: &str = "{\"run\":";

/// A line other than a run's, as an earlier cairn wrote it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum JsonLine {
    Hit {
        key: Digest,
        hits: u64,
        last_ms: u64,
    },
    Compiled {
        key: Digest,
        used_ms: u64,
    },
}

/// The statistics of `batch` as log text: an empty string if it holds none.
fn encode(batch: &Batch) -> String {
    let mut text = String::new();
    for (key, u) in &batch.usage {
        let _ = write!(text, "\nh {key} {} {};", u.hits, u.last_hit_ms);
    }
    for (key, used) in &batch.compiled_used {
        let _ = write!(text, "\nc {key} {used};");
    }
    for run in &batch.runs {
        let json = run.as_str();
        let hash = Digest::of(json.as_bytes());
        let _ = write!(text, "\nr {} {hash} {json}", json.len());
    }
    text
}

/// Adds the statistics in log `text` to `batch`; lines that do not parse
/// (torn by a crash) are skipped.
fn decode(text: &[u8], batch: &mut Batch) {
    // Bytes that are not UTF-8 (damage) become U+FFFD: their line does not
    // parse, or its hash does not match.
    let text = match std::str::from_utf8(text) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(text),
    };
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let added = match line.split_at_checked(2) {
            Some(("h ", rest)) => hit(rest).map(|(key, u)| batch.add_usage(key, u)),
            Some(("c ", rest)) => compiled(rest).map(|(key, t)| batch.add_compiled(key, t)),
            Some(("r ", rest)) => run(rest).map(|r| batch.runs.push(r)),
            _ => json_line(line, batch),
        };
        if added.is_none() {
            tracing::debug!("skipping a damaged line of the statistics log");
        }
    }
}

/// The numbers of a line that ends in `;`, after its key.
fn fields<const N: usize>(rest: &str) -> Option<(Digest, [u64; N])> {
    let mut words = rest.strip_suffix(';')?.split(' ');
    let key = Digest::from_hex(words.next()?)?;
    let mut numbers = [0; N];
    for n in &mut numbers {
        *n = words.next()?.parse().ok()?;
    }
    words.next().is_none().then_some((key, numbers))
}

fn hit(rest: &str) -> Option<(Digest, Usage)> {
    let (key, [hits, last_hit_ms]) = fields(rest)?;
    Some((key, Usage { hits, last_hit_ms }))
}

fn compiled(rest: &str) -> Option<(Digest, u64)> {
    let (key, [used]) = fields(rest)?;
    Some((key, used))
}

/// A run's record, if it is whole: its length and hash match.
fn run(rest: &str) -> Option<RunJson> {
    let (len, rest) = rest.split_once(' ')?;
    let (hash, json) = rest.split_once(' ')?;
    let whole = json.len() == len.parse::<usize>().ok()?
        && Digest::from_hex(hash)? == Digest::of(json.as_bytes());
    whole.then(|| RunJson::trusted(json)).flatten()
}

/// A line of the JSON form an earlier cairn appended.
fn json_line(line: &str, batch: &mut Batch) -> Option<()> {
    if let Some(json) = line.strip_prefix(JSON_RUN) {
        let run = RunJson::parse(json.strip_suffix('}')?)?;
        batch.runs.push(run);
        return Some(());
    }
    match serde_json::from_str(line).ok()? {
        JsonLine::Hit { key, hits, last_ms } => batch.add_usage(
            key,
            Usage {
                hits,
                last_hit_ms: last_ms,
            },
        ),
        JsonLine::Compiled { key, used_ms } => batch.add_compiled(key, used_ms),
    }
    Some(())
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

/// Whether the logs in `dir` hold anything.
pub(crate) fn pending(dir: &Path) -> bool {
    [LOG, JSON_LOG]
        .iter()
        .any(|log| fs::metadata(dir.join(log)).is_ok_and(|m| m.len() > 0))
}

/// Takes everything in the logs in `dir`, leaving them empty. The caller
/// writes it in a transaction it is about to commit. A log that cannot be
/// read is left alone (to be taken next time); one read but not emptied is
/// not used, so that nothing is counted twice.
pub(crate) fn take(dir: &Path) -> Batch {
    let mut batch = Batch::default();
    for log in [JSON_LOG, LOG] {
        if let Some(text) = take_file(&dir.join(log)) {
            decode(&text, &mut batch);
        }
    }
    batch
}

/// The content of log `path`, which is left empty; `None` if there is none
/// or it cannot be taken.
fn take_file(path: &Path) -> Option<Vec<u8>> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot open the statistics log {}: {e}", path.display());
            return None;
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
    match taken {
        Ok(()) => Some(text),
        Err(e) => {
            tracing::warn!("cannot take the statistics log {}: {e}", path.display());
            None
        }
    }
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
        let mut only_run = Batch::default();
        only_run.runs.push(run("torn"));
        let whole = encode(&only_run);
        let (torn_run, torn_hit) = (&whole[..whole.len() - 9], format!("\nh {key} 100 1"));
        f.write_all(torn_run.as_bytes()).unwrap();
        f.write_all(torn_hit.as_bytes()).unwrap();
        // What a power loss may leave of an append: its length, in zeros.
        f.write_all(&[0; 64]).unwrap();
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

    /// A log an earlier cairn appended (JSON lines, in its own file) is
    /// still taken.
    #[test]
    fn lines_of_the_json_form_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = Digest::of(b"k");
        let first = run("first");
        let text = format!(
            "\n{{\"hit\":{{\"key\":\"{key}\",\"hits\":3,\"last_ms\":9}}}}\
             \n{{\"compiled\":{{\"key\":\"{key}\",\"used_ms\":4}}}}\
             \n{JSON_RUN}{}}}",
            first.as_str()
        );
        fs::write(dir.path().join(JSON_LOG), text).unwrap();
        let taken = take(dir.path());
        assert_eq!(
            taken.usage[&key],
            Usage {
                hits: 3,
                last_hit_ms: 9
            }
        );
        assert_eq!(taken.compiled_used[&key], 4);
        assert_eq!(taken.runs, [first]);
    }
}
