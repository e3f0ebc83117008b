//! The shared tier, on NATS JetStream (see [`crate::remote`] for the
//! client): a lookup that misses locally asks it and copies its hit into the
//! local tier (every object verified against the hash the record names); a
//! new result stored locally is published to it; a key missing everywhere
//! is claimed, so one machine executes it while the others wait; and a call
//! can be dispatched to its workers.
//!
//! Blobs inside a result are not copied by a lookup unless they came inline
//! with the record: large data travels by hash, and a host that only passes
//! a blob on (a flow handing a dataset from one worker's task to another's)
//! never needs its bytes. Whoever reads one fetches it then (verified) and
//! keeps it; until then the local entry answers only while the shared tier
//! is connected (a lookup without it is a miss and recomputes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::local::LocalTier;
use super::{Claimed, Dispatch, Found, NewResult, Sent, Tier, Want};
use crate::bytes::Bytes;
use crate::digest::Digest;
use crate::entry::KeyManifest;
use crate::error::{Error, ErrorKind, Result};
use crate::remote::record::{self, INLINE_MAX, INLINE_TOTAL};
use crate::remote::work::{self, WorkItem, ARGS_INLINE_MAX};
use crate::remote::Remote;
use crate::store::{ResultRecord, Store};
use crate::value::Blob;

/// The shared tier: a connection, and the local tier its hits are copied
/// into.
pub(crate) struct SharedTier {
    remote: Remote,
    store: Arc<Store>,
    local: LocalTier,
    /// Results stored locally whose publishing failed: the key and why.
    unpublished: std::sync::Mutex<Vec<(Digest, String)>>,
}

impl SharedTier {
    /// The tier reached through `remote`, copying into `store`.
    pub(crate) fn new(remote: Remote, store: Arc<Store>) -> SharedTier {
        SharedTier {
            remote,
            local: LocalTier::new(store.clone()),
            store,
            unpublished: Default::default(),
        }
    }

    /// Results kept locally because publishing them failed, with why.
    pub(crate) fn unpublished(&self) -> Vec<(Digest, String)> {
        self.unpublished.lock().expect("poisoned").clone()
    }

    /// The connection.
    pub(crate) fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Object `hash` from the local cache or the shared tier (verified),
    /// kept locally; `what` names it in the error when it is nowhere.
    pub(crate) fn fetch(&self, hash: &Digest, what: &str) -> Result<Arc<[u8]>> {
        if let Some(b) = self.store.object_any(hash)? {
            return Ok(b.into());
        }
        let bytes = self.remote.object(hash)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Remote,
                format!("{what} ({}) is not in the shared tier", hash.short()),
            )
        })?;
        self.store.put_object(&bytes)?;
        Ok(bytes.into())
    }

    /// Publishes local entries as if they had just been computed: for
    /// results stored before the host used the tier (or while it was down).
    /// Entries the tier already holds are left alone; expired ones skipped.
    pub(crate) fn publish(&self, keys: &[Digest]) -> Result<Published> {
        let (store, remote) = (&*self.store, &self.remote);
        store.flush()?;
        let mut report = Published::default();
        let now = store.now_ms();
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
            if self.push(key)? {
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

impl Tier for SharedTier {
    fn get(&self, key: &Digest, want: &Want<'_>) -> Result<Found> {
        if !self.pull(key, want.fresh_after_ms)? {
            return Ok(Found::Miss);
        }
        Ok(match self.local.get(key, want)? {
            Found::Hit(mut hit) => {
                hit.remote = true;
                hit.absent.clear();
                Found::Hit(hit)
            }
            _ => Found::Miss,
        })
    }

    /// Counted where it was copied to.
    fn used(&self, key: &Digest) {
        self.local.used(key);
    }

    /// Publishes a result the local tier stored. If the server fails now,
    /// the result stays local (the call still answers) and is listed by
    /// [`SharedTier::unpublished`]; the rest of the run goes on with the
    /// local cache only, as the result was already computed and kept.
    fn put(&self, new: &NewResult<'_>) -> Result<()> {
        if new.persist {
            match self.push(new.key) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Remote => {
                    self.remote.give_up();
                    self.unpublished
                        .lock()
                        .expect("poisoned")
                        .push((*new.key, e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn claim(&self, key: &Digest, want: &Want<'_>) -> Result<Claimed> {
        if self.remote.is_down() {
            return Ok(Claimed::Mine(None));
        }
        self.claim_or_wait(key, want.fresh_after_ms)
    }

    fn has_blob(&self, hash: &Digest, len: u64) -> Result<bool> {
        self.remote.has_object(hash, len)
    }

    /// Fetches a blob the local cache lacks (verified) and keeps it there:
    /// blobs of shared results are fetched when first read.
    fn open_blob(&self, blob: &Blob) -> Result<Option<Bytes>> {
        if !self.store.has_object(&blob.hash(), blob.len()) {
            match self.remote.object(&blob.hash())? {
                Some(bytes) if bytes.len() as u64 == blob.len() => {
                    self.store.put_object(&bytes)?;
                }
                _ => return Ok(None),
            }
        }
        self.local.open_blob(blob)
    }
}

impl Dispatch for SharedTier {
    fn dispatch(&self, call: &Sent<'_>) -> Result<Option<String>> {
        if self.remote.is_down() {
            return Ok(None);
        }
        let remote = &self.remote;
        let mut tree = Vec::new();
        call.task.closure_nodes(&mut tree);
        for (_, node, t) in &tree {
            remote.ensure_object(&node.component, || Ok(t.bytes()?.to_vec()))?;
        }
        let mut blobs = Vec::new();
        let mut failed = None;
        for v in call.args {
            v.for_each_blob(&mut |b| {
                if failed.is_some() || blobs.contains(&(b.hash(), b.len())) {
                    return;
                }
                blobs.push((b.hash(), b.len()));
                let read = || {
                    let bytes = (call.open_blob)(b)?;
                    bytes
                        .read(0, bytes.len())
                        .map_err(|e| Error::io(format_args!("cannot read blob {}", b.hash()), e))
                };
                if let Err(e) = remote.ensure_object(&b.hash(), read) {
                    failed = Some(e);
                }
            });
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let encoded = call.encoded;
        let args_object = (Digest::of(encoded), encoded.len() as u64);
        let inline = encoded.len() <= ARGS_INLINE_MAX;
        if !inline {
            remote.ensure_object(&args_object.0, || Ok(encoded.to_vec()))?;
        }
        let item = WorkItem {
            key: *call.key,
            closure: call.task.closure,
            nodes: tree.into_iter().map(|(d, n, _)| (d, n)).collect(),
            export: call.export.to_string(),
            args: inline.then(|| hex::encode(encoded)),
            args_object,
            fresh_after_ms: call.fresh_after_ms,
            blobs,
            reply: String::new(),
            from: String::new(),
        };
        work::dispatch(remote, item, &call.task.name, &|| {
            self.pull(call.key, call.fresh_after_ms)
        })
    }
}

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

/// What publishing local entries to the shared tier did
/// (`Host::publish`, `cairn cache push`).
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

impl SharedTier {
    /// Copies the shared entry of `key` into the local tier: whether there
    /// was one, whole, intact, unexpired and made at or after `fresh_after_ms`
    /// (anything less is a miss, never an error: the call runs and publishes
    /// its result again).
    pub(crate) fn pull(&self, key: &Digest, fresh_after_ms: u64) -> Result<bool> {
        let (store, remote) = (&*self.store, &self.remote);
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
        let now = store.now_ms();
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
    pub(crate) fn push(&self, key: &Digest) -> Result<bool> {
        let (store, remote) = (&*self.store, &self.remote);
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

    /// Claims `key` for this host, or waits (up to [`crate::remote::RemoteConfig::wait`])
    /// for the machine that holds it to publish a result made at or after
    /// `fresh_after_ms`, which is then copied into `store`.
    fn claim_or_wait(&self, key: &Digest, fresh_after_ms: u64) -> Result<Claimed> {
        let remote = &self.remote;
        let wait = remote.config().wait;
        let deadline = Instant::now() + wait;
        let mut told = false;
        loop {
            let holder = match remote.try_claim(key)? {
                None => return Ok(Claimed::Mine(None)),
                Some(Ok(claim)) => {
                    // It may have been published between our lookup and the claim.
                    if self.pull(key, fresh_after_ms)? {
                        return Ok(Claimed::Published);
                    }
                    return Ok(Claimed::Mine(Some(Box::new(claim))));
                }
                Some(Err(holder)) => holder,
            };
            if !told {
                tracing::info!(%key, holder, "another machine is computing this call; waiting for it");
                told = true;
            }
            let mut pause = Duration::from_millis(5);
            loop {
                if self.pull(key, fresh_after_ms)? {
                    return Ok(Claimed::Published);
                }
                match remote.is_claimed(key)? {
                    None => return Ok(Claimed::Mine(None)),
                    Some(false) => break,
                    Some(true) => {}
                }
                if Instant::now() >= deadline {
                    eprintln!(
                    "warning: {holder} has been computing {} for longer than {}; computing it here too",
                    key.short(),
                    humantime::format_duration(wait)
                );
                    return Ok(Claimed::Mine(None));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}
