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
/// Value bytes per shard before it is emptied (64 MiB in all).
const SHARD_BYTES: usize = 4 << 20;
/// Values larger than this are not kept. At most 64k entries and 64 MiB of
/// values are held.
const VALUE_MAX: usize = 16 * 1024;

type Hot = Arc<(ResultRecord, Arc<[u8]>)>;

#[derive(Default)]
struct Shard {
    entries: HashMap<Digest, Hot>,
    /// Value bytes held.
    bytes: usize,
    /// Bumped whenever an entry is forgotten: a reader that looked at the
    /// index before must not put back what it read.
    generation: u64,
}

#[derive(Default)]
pub(crate) struct HotResults {
    shards: [Mutex<Shard>; SHARDS],
}

impl HotResults {
    fn shard(&self, key: &Digest) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[key.as_bytes()[0] as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of `key`, or the generation to pass to [`HotResults::put`]
    /// after reading it from the index.
    pub(crate) fn get(&self, key: &Digest) -> Result<Hot, u64> {
        let shard = self.shard(key);
        shard.entries.get(key).cloned().ok_or(shard.generation)
    }

    /// Remembers the verified result of `key`, if it is small and nothing
    /// was forgotten since `generation` was read.
    pub(crate) fn put(&self, key: &Digest, record: ResultRecord, value: &[u8], generation: u64) {
        if value.len() > VALUE_MAX {
            return;
        }
        let mut shard = self.shard(key);
        if shard.generation != generation {
            return;
        }
        if shard.entries.len() >= SHARD_ENTRIES || shard.bytes + value.len() > SHARD_BYTES {
            shard.entries.clear();
            shard.bytes = 0;
        }
        shard.bytes += value.len();
        if let Some(old) = shard.entries.insert(*key, Arc::new((record, value.into()))) {
            shard.bytes -= old.1.len();
        }
    }

    pub(crate) fn forget(&self, key: &Digest) {
        let mut shard = self.shard(key);
        shard.generation += 1;
        if let Some(old) = shard.entries.remove(key) {
            shard.bytes -= old.1.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ResultRecord {
        ResultRecord {
            value: Digest::of(b"v"),
            value_len: 1,
            created_ms: 1,
            run_us: 1,
            stdout: None,
            stderr: None,
            expires_ms: None,
            bytes: 1,
        }
    }

    #[test]
    fn holds_small_values_within_its_budget_and_forgets() {
        let hot = HotResults::default();
        let key = Digest::of(b"k");
        let read = hot.get(&key).unwrap_err();
        hot.put(&key, record(), b"small", read);
        assert_eq!(&hot.get(&key).unwrap().1[..], b"small");
        hot.forget(&key);
        assert!(hot.get(&key).is_err());
        // A read from before the forget does not put the old value back.
        hot.put(&key, record(), b"small", read);
        assert!(hot.get(&key).is_err());
        let read = hot.get(&key).unwrap_err();
        hot.put(&key, record(), &vec![0; VALUE_MAX + 1], read);
        assert!(hot.get(&key).is_err(), "large values are not kept");
        // Keys of one shard: filling its byte budget empties it.
        let same_shard: Vec<Digest> = (0u32..)
            .map(|i| Digest::of(&i.to_le_bytes()))
            .filter(|d| (d.as_bytes()[0] as usize).is_multiple_of(SHARDS))
            .take(SHARD_BYTES / VALUE_MAX + 2)
            .collect();
        for k in &same_shard {
            let g = hot.get(k).unwrap_err();
            hot.put(k, record(), &vec![1; VALUE_MAX], g);
        }
        let held = same_shard.iter().filter(|k| hot.get(k).is_ok()).count();
        assert!(held * VALUE_MAX <= SHARD_BYTES, "{held} values held");
        assert!(held >= 1);
    }
}
