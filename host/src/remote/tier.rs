//! Moving entries between the local cache and the shared tier: `pull` copies
//! a shared entry in (every object verified against the hash the record
//! names), `push` publishes a local one.
//!
//! Blobs inside a result are not copied by `pull` unless they came inline
//! with the record: large data travels by hash, and a host that only passes
//! a blob on (a flow handing a dataset from one worker's task to another's)
//! never needs its bytes. Whoever reads one fetches it then (verified) and
//! keeps it; until then the local entry answers only while the shared tier
//! is connected (a lookup without it is a miss and recomputes).

use std::collections::HashMap;

use super::record::{self, INLINE_MAX, INLINE_TOTAL};
use super::Remote;
use crate::digest::Digest;
use crate::entry::KeyManifest;
use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;
use crate::store::{now_ms, ResultRecord, Store};

/// A stored record, read.
struct Parsed {
    header: ResultRecord,
    manifest: KeyManifest,
}

impl Parsed {
    /// Every object the entry holds, and whether it is a blob inside the
    /// value (rather than the value or captured output).
    fn objects(&self) -> impl Iterator<Item = ((Digest, u64), bool)> + '_ {
        let blobs = self.manifest.blobs.iter().map(|&b| (b, true));
        self.header.objects().map(|o| (o, false)).chain(blobs)
    }
}

fn parse(record: &[u8]) -> Option<Parsed> {
    let header = ResultRecord::from_bytes(record)?;
    let manifest = ResultRecord::manifest(record)?;
    Some(Parsed { header, manifest })
}

/// Copies the shared tier's entry for `key` into `store`. Whether there was
/// one, whole, intact, unexpired and made at or after `fresh_after_ms`
/// (anything less is a miss, never an error: the call runs and publishes its
/// result again).
pub(crate) fn pull(
    store: &Store,
    remote: &Remote,
    key: &Digest,
    fresh_after_ms: u64,
) -> Result<bool> {
    let Some(bytes) = remote.result(key)? else {
        return Ok(false);
    };
    let Some((record, sent)) = record::decode(&bytes) else {
        tracing::warn!(%key, "shared result is not a record this cairn reads; re-executing");
        return Ok(false);
    };
    let Some(parsed) = parse(record) else {
        tracing::warn!(%key, "shared result has another layout; re-executing");
        return Ok(false);
    };
    let header = parsed.header;
    let now = now_ms();
    if header.created_ms < fresh_after_ms || header.expires_ms.is_some_and(|t| t <= now) {
        return Ok(false);
    }
    let sent: HashMap<Digest, &[u8]> = sent.into_iter().map(|o| (Digest::of(o), o)).collect();
    let mut missing = Vec::new();
    for ((hash, len), blob) in parsed.objects() {
        if store.has_object(&hash, len) {
            continue;
        }
        let bytes = match sent.get(&hash) {
            Some(b) => b.to_vec(),
            None if blob => {
                if remote.has_object(&hash, len)? {
                    continue; // fetched when something reads it
                }
                tracing::warn!(%key, %hash, "a blob of a shared result is missing; re-executing");
                return Ok(false);
            }
            None => match remote.object(&hash)? {
                Some(b) => b,
                None => {
                    tracing::warn!(%key, %hash, "an object of a shared result is missing; re-executing");
                    return Ok(false);
                }
            },
        };
        if bytes.len() as u64 != len {
            return Ok(false);
        }
        missing.push(bytes);
    }
    store.import(
        key,
        record,
        &parsed.manifest.export,
        header.created_ms,
        &missing,
    )?;
    Ok(true)
}

/// Publishes the local entry of `key` to the shared tier: its large objects
/// to the object store (unless there already), then the record with its
/// small objects. Objects are read verified from the local cache. Whether
/// it was published (not when there is no such entry, or the tier is down).
pub(crate) fn push(store: &Store, remote: &Remote, key: &Digest) -> Result<bool> {
    let Some(record) = store.record_bytes(key)? else {
        return Ok(false);
    };
    let Some(parsed) = parse(&record) else {
        return Ok(false);
    };
    let gone = |hash: &Digest| {
        Error::new(
            ErrorKind::Cache,
            format!("object {hash} of a new result is gone from the local cache; run again"),
        )
    };
    let mut inline = Vec::new();
    let mut total = 0;
    for ((hash, len), _) in parsed.objects() {
        let len_usize = len as usize;
        // A blob this host took lazily is not here, and is in the tier.
        let here = store.has_object(&hash, len);
        if here && len_usize <= INLINE_MAX && total + len_usize <= INLINE_TOTAL {
            inline.push(store.object(&hash, len)?.ok_or_else(|| gone(&hash))?);
            total += len_usize;
        } else {
            remote.ensure_object(&hash, || {
                store.object(&hash, len)?.ok_or_else(|| gone(&hash))
            })?;
        }
    }
    remote.put_result(key, record::encode(&record, &inline))?;
    Ok(!remote.is_down())
}

/// What [`Host::publish`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Published {
    /// Entries published now.
    pub published: usize,
    /// Entries the shared tier already held (unexpired): left as they are.
    pub already: usize,
    /// Entries not published because they have expired, are gone, or
    /// cannot be read.
    pub skipped: usize,
}

impl Host {
    /// Publishes local entries to the connected shared tier, as if they had
    /// just been computed: for results stored before the host used the tier
    /// (or while it was down), which other machines would otherwise compute
    /// again. Entries the tier already holds are left alone; expired ones
    /// are skipped.
    ///
    /// # Errors
    /// [`ErrorKind::Remote`] if the host is not connected or the tier fails;
    /// [`ErrorKind::Cache`] if an entry's objects cannot be read. What was
    /// published before the error stays published.
    pub fn publish(&self, keys: &[Digest]) -> Result<Published> {
        let remote = self.inner.remote.get().ok_or_else(|| {
            Error::new(
                ErrorKind::Remote,
                "publishing needs a shared tier; connect with --remote nats://HOST:PORT",
            )
        })?;
        let store = &self.inner.store;
        store.flush()?;
        let mut report = Published::default();
        let now = now_ms();
        let live = |record: &[u8]| {
            ResultRecord::from_bytes(record).is_some_and(|h| h.expires_ms.is_none_or(|t| t > now))
        };
        for key in keys {
            let local = store.record_bytes(key)?;
            if !local.as_deref().is_some_and(live) {
                report.skipped += 1;
                continue;
            }
            let shared = remote.result(key)?;
            if shared
                .as_deref()
                .and_then(record::decode)
                .is_some_and(|(record, _)| live(record))
            {
                report.already += 1;
                continue;
            }
            if push(store, remote, key)? {
                report.published += 1;
            } else if remote.is_down() {
                return Err(Error::new(
                    ErrorKind::Remote,
                    "the shared tier went away while publishing; run again when it is back",
                ));
            } else {
                report.skipped += 1; // gone meanwhile, or unreadable
            }
        }
        Ok(report)
    }
}
