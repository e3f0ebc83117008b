//! Claims: the first machine to miss a key claims it (a key-value create,
//! which only one can win) and executes it; the others wait for its result.
//! A claim lives in a bucket whose entries expire, and its holder renews it
//! while it works, so a holder that dies blocks the others for at most the
//! claim's time to live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;

use super::Remote;
use crate::digest::Digest;
use crate::error::Result;

/// A key this host claimed; dropping it releases the claim.
pub(crate) struct Claim {
    name: String,
    claims: kv::Store,
    rt: tokio::runtime::Handle,
    renew: tokio::task::JoinHandle<()>,
    /// The claim's latest revision (the renewals move it on).
    revision: Arc<AtomicU64>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.renew.abort();
        let claims = self.claims.clone();
        let name = std::mem::take(&mut self.name);
        let revision = self.revision.load(Ordering::SeqCst);
        // Only while it is still ours: if it expired and another machine
        // claimed the key since, its claim stays. Best effort: a claim not
        // released expires on its own.
        let _ = self.rt.block_on(async move {
            let release = claims.delete_expect_revision(name, Some(revision));
            tokio::time::timeout(Duration::from_secs(2), release).await
        });
    }
}

impl Remote {
    /// Tries to claim `key`: the claim, or who holds it (`Err`); `None` when
    /// the tier is unavailable.
    pub(crate) fn try_claim(
        &self,
        key: &Digest,
    ) -> Result<Option<std::result::Result<Claim, String>>> {
        let name = key.to_hex();
        let got = self.run("claiming a call", async {
            match self.claims.create(&name, self.id.clone().into()).await {
                Ok(revision) => Ok(Ok(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let holder = self.claims.get(&name).await.ok().flatten();
                    Ok(Err(holder
                        .map(|h| String::from_utf8_lossy(&h).into_owned())
                        .unwrap_or_default()))
                }
                Err(e) => Err(e),
            }
        })?;
        Ok(got.map(|r| r.map(|revision| self.hold(name, revision))))
    }

    /// Starts renewing the claim `name` made at `revision`.
    fn hold(&self, name: String, revision: u64) -> Claim {
        let (claims, id) = (self.claims.clone(), self.id.clone());
        let every = self.cfg.claim_ttl / 3;
        let key = name.clone();
        let current = Arc::new(AtomicU64::new(revision));
        let latest = current.clone();
        let renew = self.rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let revision = latest.load(Ordering::SeqCst);
                match claims.update(&key, id.clone().into(), revision).await {
                    Ok(r) => latest.store(r, Ordering::SeqCst),
                    Err(e) => {
                        // An update that landed but whose answer was lost
                        // leaves us a revision behind: still ours?
                        match claims.entry(&key).await {
                            Ok(Some(e)) if e.value == id.as_bytes() => {
                                latest.store(e.revision, Ordering::SeqCst)
                            }
                            Ok(_) => {
                                tracing::warn!(key, "lost a claim (it expired); still computing");
                                return;
                            }
                            Err(_) => tracing::warn!(key, "cannot renew a claim: {e}"),
                        }
                    }
                }
            }
        });
        Claim {
            name,
            claims: self.claims.clone(),
            rt: self.rt.handle().clone(),
            renew,
            revision: current,
        }
    }

    /// Whether someone holds a claim on `key`; `None` when unavailable.
    pub(crate) fn is_claimed(&self, key: &Digest) -> Result<Option<bool>> {
        self.run("reading a claim", async {
            let entry = self.claims.entry(key.to_hex()).await?;
            Ok::<_, kv::EntryError>(entry.is_some_and(|e| e.operation == kv::Operation::Put))
        })
    }
}
