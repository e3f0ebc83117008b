//! Results this process has read or written lately, in memory: a repeated
//! hit answers without opening a read transaction (which costs more than the
//! rest of a hit together). Only small values are kept, in shards by key so
//! threads rarely meet; a full shard is emptied (cheap and good enough for a
//! set of hot keys).
//!
//! What is here was verified when it was read or written; an entry removed
//! through this process is dropped at once. An entry another process removes
//! may still be answered from memory for the life of this one: the value is
//! still the right one for its key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::record::ResultRecord;
use crate::digest::Digest;

const SHARDS: usize = 16;
/// Entries per shard before it is emptied.
const SHARD_ENTRIES: usize = 4096;
/// Values larger than this are not kept.
const VALUE_MAX: usize = 16 * 1024;

type Hot = Arc<(ResultRecord, Arc<[u8]>)>;

#[derive(Default)]
pub(crate) struct HotResults {
    shards: [Mutex<HashMap<Digest, Hot>>; SHARDS],
}

impl HotResults {
    fn shard(&self, key: &Digest) -> std::sync::MutexGuard<'_, HashMap<Digest, Hot>> {
        self.shards[key.as_bytes()[0] as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(&self, key: &Digest) -> Option<Hot> {
        self.shard(key).get(key).cloned()
    }

    /// Remembers the verified result of `key`, if it is small.
    pub(crate) fn put(&self, key: &Digest, record: ResultRecord, value: &[u8]) {
        if value.len() > VALUE_MAX {
            return;
        }
        let mut shard = self.shard(key);
        if shard.len() >= SHARD_ENTRIES {
            shard.clear();
        }
        shard.insert(*key, Arc::new((record, value.into())));
    }

    pub(crate) fn forget(&self, key: &Digest) {
        self.shard(key).remove(key);
    }
}
