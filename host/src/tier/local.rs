//! The local tier: the cache directory, a redb index plus a content-addressed
//! object store (see [`crate::store`]). Every read is verified.

use std::sync::Arc;
use std::time::Duration;

use super::{Found, NewResult, Stored, Tier, Want};
use crate::bytes::Bytes;
use crate::codec;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{NewEntry, Output, Store, INLINE_MAX};
use crate::value::{Blob, BlobSource, Value};

/// The cache directory as a tier.
pub(crate) struct LocalTier {
    store: Arc<Store>,
}

impl LocalTier {
    /// The tier of `store`.
    pub(crate) fn new(store: Arc<Store>) -> LocalTier {
        LocalTier { store }
    }
}

impl Tier for LocalTier {
    /// A miss when nothing is stored, or when the stored value is missing or
    /// damaged (the call runs and repairs it); expired when it outlived its
    /// time to live, or is older than `max_age`.
    fn get(&self, key: &Digest, want: &Want<'_>) -> Result<Found> {
        let store = &self.store;
        let Some((record, bytes)) = store.stored_value(key)? else {
            return Ok(Found::Miss);
        };
        let now = store.now_ms();
        let too_old = want
            .max_age
            .is_some_and(|age| record.created_ms.saturating_add(age.as_millis() as u64) <= now);
        if too_old || record.expires_ms.is_some_and(|t| t <= now) {
            return Ok(Found::Expired(record.created_ms));
        }
        let value = match &want.ty.result {
            None if bytes.is_empty() => None,
            None => return Ok(Found::Miss),
            Some(t) => match codec::from_bytes(&bytes, t) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(%key, "stored result does not decode ({e}); re-executing");
                    return Ok(Found::Miss);
                }
            },
        };
        // A blob of the result that is gone (or cut short) makes the entry
        // a miss unless a later tier holds it (the shared tier's blobs are
        // fetched when read): then the call re-executes and stores it again.
        let mut absent = Vec::new();
        if let Some(v) = &value {
            v.for_each_blob(&mut |b| {
                if matches!(b.source, BlobSource::Stored) && !store.has_object(&b.hash(), b.len()) {
                    absent.push((b.hash(), b.len()));
                }
            });
        }
        let output = |o: Option<(Digest, u64)>| -> Result<Vec<u8>> {
            match o.filter(|_| want.replay) {
                Some((hash, len)) => Ok(store.object(&hash, len)?.unwrap_or_default()),
                None => Ok(Vec::new()),
            }
        };
        Ok(Found::Hit(Box::new(Stored {
            value,
            run: Duration::from_micros(record.run_us),
            output: (output(record.stdout)?, output(record.stderr)?),
            expires_ms: record.expires_ms,
            absent,
            remote: false,
        })))
    }

    fn put(&self, new: &NewResult<'_>) -> Result<()> {
        if !new.persist {
            return Ok(());
        }
        let mut manifest = new.manifest.clone();
        let (encoded, blobs) = match (new.value, &new.ty.result) {
            (Some(v), Some(t)) => {
                let encoded = codec::to_bytes(v, t)
                    .map_err(|e| Error::internal(format!("result does not encode: {e}")))?;
                v.for_each_blob(&mut |b| manifest.blobs.push((b.hash(), b.len())));
                (encoded, result_blobs(v)?)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        let mut closures = Vec::new();
        new.task.closure_nodes(&mut closures);
        self.store.put_result(NewEntry {
            key: *new.key,
            value: &encoded,
            blobs: &refs,
            run: new.run,
            output: Output {
                stdout: new.stdout,
                stderr: new.stderr,
            },
            expires_ms: new.expires_ms,
            manifest: &manifest,
            args: new.args,
            closures,
        })
    }

    fn used(&self, key: &Digest) {
        self.store.hit(key);
    }

    fn has_blob(&self, hash: &Digest, len: u64) -> Result<bool> {
        Ok(self.store.has_object(hash, len))
    }

    /// Large blobs are opened as files, verified against their hash first
    /// (a damaged one is dropped: what produced it re-executes next time).
    fn open_blob(&self, blob: &Blob) -> Result<Option<Bytes>> {
        let (hash, len) = (blob.hash(), blob.len());
        if len as usize > INLINE_MAX {
            let path = self.store.object_file(&hash);
            let Ok((found, _)) = crate::digest::hash_file(&path) else {
                return Ok(None);
            };
            if found != hash {
                self.store.drop_object(&hash, len)?;
                return Ok(None);
            }
            return Ok(crate::bytes::open_file(&path).ok());
        }
        Ok(self
            .store
            .object(&hash, len)?
            .map(|b| Bytes::Memory(b.into())))
    }
}

/// The content of every blob in a result that the cache does not hold yet.
fn result_blobs(v: &Value) -> Result<Vec<Arc<[u8]>>> {
    let mut out = Vec::new();
    let mut err = None;
    v.for_each_blob(&mut |b: &Blob| match &b.source {
        BlobSource::Bytes(bytes) => out.push(bytes.clone()),
        BlobSource::File(path, _) => match std::fs::read(path) {
            Ok(bytes) => out.push(bytes.into()),
            Err(e) => err = Some(Error::io(format_args!("cannot read {}", path.display()), e)),
        },
        BlobSource::Stored => {}
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The error of a stored blob no tier holds.
pub(crate) fn blob_missing(blob: &Blob) -> Error {
    Error::new(
        ErrorKind::Cache,
        format!(
            "blob {} is not in the cache (removed or damaged); re-run what produced it",
            blob.hash()
        ),
    )
}
