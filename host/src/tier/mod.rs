//! Where results are kept: tiers behind one small interface, walked in
//! order by the call path.
//!
//! A [`Tier`] answers three questions, as sccache's `Storage` answers get
//! and put: is a result stored under this key ([`Tier::get`]), keep this new
//! one ([`Tier::put`]), and may this process execute the key, or is someone
//! else already doing it ([`Tier::claim`]). Blobs named by a result may live
//! in a later tier than the result, so tiers also say whether they hold a
//! blob and open it.
//!
//! The tiers of a host, in order:
//!
//! 1. [`memory::MemoryTier`]: results of tasks that do not persist, for the
//!    life of the host.
//! 2. [`local::LocalTier`]: the cache directory (redb index + object store).
//! 3. `shared::SharedTier` (feature `remote`, once connected): NATS
//!    JetStream. A hit there is copied into the local tier.
//!
//! [`Tiers`] walks them. Unit tests of the call path use a scripted tier
//! (hit, miss, error, slow) instead, with no wasm and no server.
//!
//! Layer: below the call path, above the stores. May import the local
//! store, the shared tier's client (`remote`) and the bottom layer.

pub(crate) mod local;
pub(crate) mod memory;
#[cfg(test)]
pub(crate) mod scripted;
#[cfg(feature = "remote")]
pub(crate) mod shared;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::bytes::Bytes;
use crate::digest::Digest;
use crate::entry::KeyManifest;
use crate::error::Result;
use crate::task::Task;
use crate::types::FuncType;
use crate::value::{Blob, Value};

/// What a lookup asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Want<'a> {
    /// The called function's type: the stored value decodes by it.
    pub(crate) ty: &'a FuncType,
    /// Load what the producing run wrote to stdout and stderr too.
    pub(crate) replay: bool,
    /// Results older than this are expired.
    pub(crate) max_age: Option<Duration>,
    /// Results made before this (ms since the epoch) are stale: `--refresh`
    /// and maximum ages, as other machines must see them.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    pub(crate) fresh_after_ms: u64,
}

/// A result found in a tier.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stored {
    pub(crate) value: Option<Value>,
    /// How long the run that produced it took.
    pub(crate) run: Duration,
    /// The stdout and stderr of that run, if asked for.
    pub(crate) output: (Vec<u8>, Vec<u8>),
    /// When it expires (ms since the epoch).
    pub(crate) expires_ms: Option<u64>,
    /// Blobs of the value this tier does not hold: the hit stands only if a
    /// later tier holds them.
    pub(crate) absent: Vec<(Digest, u64)>,
    /// Copied from a tier beyond this machine by this lookup.
    pub(crate) remote: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Found {
    Hit(Box<Stored>),
    /// A result stored at this time (ms since the epoch) that has expired.
    Expired(u64),
    Miss,
}

/// A result to keep: what one execution produced, and what its key was
/// made of.
pub(crate) struct NewResult<'a> {
    pub(crate) key: &'a Digest,
    pub(crate) task: &'a Task,
    pub(crate) ty: &'a FuncType,
    pub(crate) value: Option<&'a Value>,
    pub(crate) run: Duration,
    pub(crate) stdout: &'a [u8],
    pub(crate) stderr: &'a [u8],
    /// What the key was made of.
    pub(crate) manifest: &'a KeyManifest,
    /// Whether the result is kept beyond this host (the task persists);
    /// the memory tier keeps those that do not.
    pub(crate) persist: bool,
    /// The arguments' canonical encoding.
    pub(crate) args: &'a [u8],
    pub(crate) expires_ms: Option<u64>,
}

/// A claim on a key: held until dropped.
pub(crate) type Hold = Box<dyn Send>;

/// What claiming a key gave.
pub(crate) enum Claimed {
    /// This process executes it; the hold (if the tier gave one) releases
    /// the claim when dropped.
    Mine(Option<Hold>),
    /// Someone else executed it meanwhile: look it up again.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    Published,
}

/// A call to run elsewhere.
#[cfg_attr(
    not(feature = "remote"),
    allow(dead_code, reason = "used by the shared tier (feature `remote`)")
)]
pub(crate) struct Sent<'a> {
    pub(crate) task: &'a Task,
    pub(crate) export: &'a str,
    pub(crate) key: &'a Digest,
    pub(crate) args: &'a [Value],
    /// The arguments' canonical encoding.
    pub(crate) encoded: &'a [u8],
    /// Results made before this are stale.
    pub(crate) fresh_after_ms: u64,
    /// Opens the bytes of a blob among the arguments (to send it).
    pub(crate) open_blob: &'a dyn Fn(&Blob) -> Result<Bytes>,
}

/// Runs calls that missed on other machines: the shared tier's workers.
pub(crate) trait Dispatch: Send + Sync {
    /// Sends `call` to a worker and waits until its result is in the local
    /// tier. The worker's name; `None` when no worker can be reached, so
    /// the caller runs it here.
    fn dispatch(&self, call: &Sent<'_>) -> Result<Option<String>>;
}

/// One place results are kept. Each tier keeps what it is for and ignores
/// the rest (the memory tier keeps only results that do not persist).
pub(crate) trait Tier: Send + Sync {
    /// The result stored under `key`: a miss when there is none (or it is
    /// damaged, which is never an error: the call runs and repairs it).
    fn get(&self, key: &Digest, want: &Want<'_>) -> Result<Found>;

    /// Keeps a new result.
    fn put(&self, new: &NewResult<'_>) -> Result<()>;

    /// Claims `key` for this process before it executes it, or waits for
    /// whoever holds it. Tiers no other process writes to have nothing to
    /// claim.
    fn claim(&self, key: &Digest, want: &Want<'_>) -> Result<Claimed> {
        let _ = (key, want);
        Ok(Claimed::Mine(None))
    }

    /// The hit this tier gave for `key` was taken (counts as a use: hit
    /// counts and last-use times feed garbage collection).
    fn used(&self, key: &Digest) {
        let _ = key;
    }

    /// Whether this tier holds blob `hash` of `len` bytes.
    fn has_blob(&self, hash: &Digest, len: u64) -> Result<bool> {
        let _ = (hash, len);
        Ok(false)
    }

    /// The bytes of a stored blob, verified; `None` if this tier lacks it.
    fn open_blob(&self, blob: &Blob) -> Result<Option<Bytes>> {
        let _ = blob;
        Ok(None)
    }
}

/// A host's tiers, in the order a lookup walks them: those of this machine,
/// then the remote one once connected.
pub(crate) struct Tiers {
    local: Vec<Arc<dyn Tier>>,
    /// A tier beyond this machine (the shared tier), connected later.
    remote: OnceLock<Arc<dyn Tier>>,
}

impl Tiers {
    /// The tiers of this machine, walked in order.
    pub(crate) fn new(local: Vec<Arc<dyn Tier>>) -> Tiers {
        Tiers {
            local,
            remote: OnceLock::new(),
        }
    }

    /// Connects `tier` after the local ones; `false` if one was already.
    #[cfg_attr(
        not(feature = "remote"),
        allow(dead_code, reason = "used by the shared tier (feature `remote`)")
    )]
    pub(crate) fn connect(&self, tier: Arc<dyn Tier>) -> bool {
        self.remote.set(tier).is_ok()
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Tier>> {
        self.local.iter().chain(self.remote.get())
    }

    /// The `i`th tier in walking order.
    fn nth(&self, i: usize) -> Option<&Arc<dyn Tier>> {
        match self.local.get(i) {
            Some(t) => Some(t),
            None if i == self.local.len() => self.remote.get(),
            None => None,
        }
    }

    /// The first hit, walking every tier in order. A hit whose blobs are in
    /// none of the tiers after it counts as a miss; an expired entry is
    /// remembered and the walk goes on (a later tier may hold a fresh one).
    pub(crate) fn get(&self, key: &Digest, want: &Want<'_>) -> Result<Found> {
        self.walk(usize::MAX, key, want)
    }

    /// [`Tiers::get`] in the tiers of this machine only: after waiting for
    /// another call of this process, or for a claim whose holder published
    /// (its result was copied here). The result's blobs may still be in the
    /// remote tier.
    pub(crate) fn get_local(&self, key: &Digest, want: &Want<'_>) -> Result<Found> {
        self.walk(self.local.len(), key, want)
    }

    /// Asks the first `asked` tiers in order; tells the one whose hit is
    /// taken that it was used.
    fn walk(&self, asked: usize, key: &Digest, want: &Want<'_>) -> Result<Found> {
        let mut expired = None;
        for i in 0..asked {
            let Some(tier) = self.nth(i) else { break };
            match tier.get(key, want)? {
                Found::Hit(hit) if self.held_after(i, &hit.absent)? => {
                    tier.used(key);
                    return Ok(Found::Hit(hit));
                }
                Found::Hit(_) => {
                    tracing::warn!(%key, "a blob of the stored result is missing; re-executing");
                }
                Found::Expired(at) => expired = expired.or(Some(at)),
                Found::Miss => {}
            }
        }
        Ok(expired.map_or(Found::Miss, Found::Expired))
    }

    /// Whether every blob of `absent` is held by a tier after the `i`th.
    fn held_after(&self, i: usize, absent: &[(Digest, u64)]) -> Result<bool> {
        for (hash, len) in absent {
            let mut held = false;
            for tier in self.all().skip(i + 1) {
                if tier.has_blob(hash, *len)? {
                    held = true;
                    break;
                }
            }
            if !held {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Keeps `new` in every tier, in order (the shared tier publishes what
    /// the local tier stored).
    pub(crate) fn put(&self, new: &NewResult<'_>) -> Result<()> {
        self.all().try_for_each(|t| t.put(new))
    }

    /// Claims `key` in every tier that has claims; `Published` as soon as
    /// one says another process made the result meanwhile.
    pub(crate) fn claim(&self, key: &Digest, want: &Want<'_>) -> Result<Claimed> {
        let mut holds = Vec::new();
        for tier in self.all() {
            match tier.claim(key, want)? {
                Claimed::Mine(hold) => holds.extend(hold),
                Claimed::Published => return Ok(Claimed::Published),
            }
        }
        Ok(Claimed::Mine(match holds.len() {
            0 => None,
            _ => Some(Box::new(holds)),
        }))
    }

    /// The bytes of a stored blob from the first tier that has it.
    pub(crate) fn open_blob(&self, blob: &Blob) -> Result<Option<Bytes>> {
        for tier in self.all() {
            if let Some(bytes) = tier.open_blob(blob)? {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// Whether the remote tier holds blob `hash` (`false` when none is
    /// connected).
    pub(crate) fn remote_has_blob(&self, hash: &Digest, len: u64) -> Result<bool> {
        match self.remote.get() {
            Some(t) => t.has_blob(hash, len),
            None => Ok(false),
        }
    }
}
