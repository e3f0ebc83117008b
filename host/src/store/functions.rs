//! Compiled functions, for the engine's incremental compilation: a large
//! component (a language runtime such as CPython, ~18 MB) shares almost all
//! its functions with the next version of the same task and with every other
//! task built on that runtime, so each function is compiled once per cache.
//!
//! An entry is the blake3 hash of its bytes followed by the bytes. A read
//! checks the hash: a damaged entry is a miss (the function is compiled
//! again and the entry rewritten), never code run. What the bytes mean is
//! Cranelift's business: its key covers the function's IR, the target and
//! every compiler setting, and it rejects an entry of another version.

use redb::{ReadableTable as _, ReadableTableMetadata as _, TableError};

use super::tables::FUNCTIONS;
use super::Store;
use crate::digest::Digest;
use crate::error::Result;

/// The table's key for Cranelift's `key` (of any length).
fn row_key(key: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new_derive_key("cairn compiled function");
    h.update(key);
    Digest::from(h.finalize())
}

/// `value` as stored: its hash, then itself.
fn entry(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + value.len());
    out.extend_from_slice(Digest::of(value).as_bytes());
    out.extend_from_slice(value);
    out
}

/// The value of a stored entry, if its hash matches.
fn verified(entry: &[u8]) -> Option<Vec<u8>> {
    let (hash, value) = entry.split_at_checked(32)?;
    (Digest::of(value).as_bytes() == hash).then(|| value.to_vec())
}

impl Store {
    /// The compiled function stored under Cranelift's `key`, verified;
    /// `None` if absent or damaged.
    pub(crate) fn function(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let row = row_key(key);
        if let Some(entry) = self.queue.find(|b| b.functions.get(&row).cloned()) {
            return Ok(verified(&entry));
        }
        self.read(|tx| match tx.open_table(FUNCTIONS) {
            Ok(table) => Ok(table.get(row.as_bytes())?.and_then(|v| verified(v.value()))),
            // A cache made before this table existed.
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })
    }

    /// Stores compiled functions by Cranelift's key, with the next shared
    /// commit.
    pub(crate) fn put_functions(&self, functions: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        if functions.is_empty() {
            return Ok(());
        }
        let rows: Vec<(Digest, std::sync::Arc<[u8]>)> = functions
            .iter()
            .map(|(key, value)| (row_key(key), entry(value).into()))
            .collect();
        self.queue.push(|b| b.functions.extend(rows));
        Ok(())
    }

    /// How many compiled functions are stored, and their bytes.
    pub(crate) fn functions_stored(&self) -> Result<(u64, u64)> {
        self.flush()?;
        self.read(|tx| match tx.open_table(FUNCTIONS) {
            Ok(table) => {
                let mut bytes = 0;
                for row in table.iter()? {
                    bytes += row?.1.value().len() as u64;
                }
                Ok((table.len()?, bytes))
            }
            Err(TableError::TableDoesNotExist(_)) => Ok((0, 0)),
            Err(e) => Err(e.into()),
        })
    }

    /// Drops every compiled function (the size budget's first victim: they
    /// only spare compiling again).
    pub(crate) fn clear_functions(&self) -> Result<()> {
        // Queued ones too: none is written after the table is dropped.
        self.flush()?;
        self.write(|tx| {
            tx.delete_table(FUNCTIONS)
                .map(drop)
                .map_err(redb::Error::from)
        })
    }

    /// Flips a byte of every stored function (for tests of damage).
    #[cfg(test)]
    pub(crate) fn damage_functions(&self) -> Result<()> {
        self.flush()?;
        self.write(|tx| {
            let mut table = tx.open_table(FUNCTIONS)?;
            let rows: Vec<([u8; 32], Vec<u8>)> = table
                .iter()?
                .map(|r| r.map(|(k, v)| (*k.value(), v.value().to_vec())))
                .collect::<std::result::Result<_, _>>()?;
            for (key, mut value) in rows {
                let last = value.len() - 1;
                value[last] ^= 0x40;
                table.insert(&key, &value[..])?;
            }
            Ok::<(), redb::Error>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{entry, verified};

    #[test]
    fn an_entry_reads_back_only_while_intact() {
        let stored = entry(b"machine code");
        assert_eq!(verified(&stored).as_deref(), Some(&b"machine code"[..]));
        let mut damaged = stored.clone();
        damaged[40] ^= 1;
        assert_eq!(verified(&damaged), None);
        assert_eq!(verified(&stored[..20]), None);
    }
}
