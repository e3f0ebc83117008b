//! The fixed binary layouts the index stores: result records and stat-cache
//! entries. Layout versions are checked on read; a record of another layout
//! is a miss (re-run and rewritten), never an error.

use crate::bytes::FileStamp;
use crate::digest::Digest;
use crate::entry::KeyManifest;
use crate::error::{Error, Result};

/// What the index keeps for one cached call: a fixed header read on every
/// hit, followed by its key manifest, read only to list, show, explain,
/// collect garbage, re-execute or publish.
///
/// The manifest is [postcard](https://docs.rs/postcard) (digests as their 32
/// bytes): about a third of the JSON that layout 3 stored, which is still
/// read. Postcard is not self-describing, so any change to [`KeyManifest`]'s
/// fields needs a new layout version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultRecord {
    /// Hash of the result's canonical encoding (an object).
    pub value: Digest,
    /// Its length in bytes.
    pub value_len: u64,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// How long the call took to execute, in microseconds.
    pub run_us: u64,
    /// What the run wrote to stdout (an object), if anything.
    pub stdout: Option<(Digest, u64)>,
    /// What the run wrote to stderr (an object), if anything.
    pub stderr: Option<(Digest, u64)>,
    /// When the result stops being valid (its own time to live, or the
    /// earliest of the results it was made from), in ms since the epoch.
    pub expires_ms: Option<u64>,
    /// Bytes the entry stores: value, result blobs, captured output.
    pub bytes: u64,
}

impl ResultRecord {
    /// Layout version 4: the key manifest in postcard.
    const VERSION: u8 = 4;
    /// Layout version 3: the same header, the key manifest in JSON.
    const JSON_MANIFEST: u8 = 3;
    /// Length of the fixed header.
    pub(crate) const LEN: usize = 1 + 32 + 8 + 8 + 8 + 40 + 40 + 8 + 8;

    /// The header followed by `manifest`.
    pub(crate) fn to_bytes(self, manifest: &KeyManifest) -> Result<Vec<u8>> {
        postcard::to_extend(manifest, self.header())
            .map_err(|e| Error::internal(format!("cannot encode a key manifest: {e}")))
    }

    fn header(self) -> Vec<u8> {
        let mut b = vec![0u8; Self::LEN];
        b[0] = Self::VERSION;
        b[1..33].copy_from_slice(self.value.as_bytes());
        b[33..41].copy_from_slice(&self.value_len.to_le_bytes());
        b[41..49].copy_from_slice(&self.created_ms.to_le_bytes());
        b[49..57].copy_from_slice(&self.run_us.to_le_bytes());
        for (at, out) in [(57, self.stdout), (97, self.stderr)] {
            if let Some((hash, len)) = out {
                b[at..at + 32].copy_from_slice(hash.as_bytes());
                b[at + 32..at + 40].copy_from_slice(&len.to_le_bytes());
            }
        }
        b[137..145].copy_from_slice(&self.expires_ms.unwrap_or(0).to_le_bytes());
        b[145..153].copy_from_slice(&self.bytes.to_le_bytes());
        b
    }

    /// The header of a stored record; `None` for bytes of another layout.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<ResultRecord> {
        if b.len() < Self::LEN || ![Self::VERSION, Self::JSON_MANIFEST].contains(&b[0]) {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("fixed layout"));
        let digest_at =
            |i: usize| Digest::from_bytes(b[i..i + 32].try_into().expect("fixed layout"));
        let output = |at: usize| Some((digest_at(at), u64_at(at + 32))).filter(|(_, len)| *len > 0);
        Some(ResultRecord {
            value: digest_at(1),
            value_len: u64_at(33),
            created_ms: u64_at(41),
            run_us: u64_at(49),
            stdout: output(57),
            stderr: output(97),
            expires_ms: Some(u64_at(137)).filter(|&t| t > 0),
            bytes: u64_at(145),
        })
    }

    /// The key manifest of a stored record; `None` if it cannot be read
    /// (another layout, or damaged).
    pub(crate) fn manifest(b: &[u8]) -> Option<KeyManifest> {
        let bytes = b.get(Self::LEN..)?;
        match b[0] {
            Self::VERSION => postcard::from_bytes(bytes).ok(),
            Self::JSON_MANIFEST => serde_json::from_slice(bytes).ok(),
            _ => None,
        }
    }

    /// The objects the entry holds: value and captured output.
    pub(crate) fn objects(&self) -> impl Iterator<Item = (Digest, u64)> {
        [Some((self.value, self.value_len)), self.stdout, self.stderr]
            .into_iter()
            .flatten()
    }
}

/// A file's stamp and the hash of its content: the stat cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatEntry {
    pub(crate) stamp: FileStamp,
    pub(crate) hash: Digest,
}

impl StatEntry {
    const LEN: usize = 8 * 3 + 16 * 2 + 32;

    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let s = &self.stamp;
        let mut b = Vec::with_capacity(Self::LEN);
        b.extend_from_slice(&s.dev.to_le_bytes());
        b.extend_from_slice(&s.ino.to_le_bytes());
        b.extend_from_slice(&s.size.to_le_bytes());
        b.extend_from_slice(&s.mtime_ns.to_le_bytes());
        b.extend_from_slice(&s.ctime_ns.to_le_bytes());
        b.extend_from_slice(self.hash.as_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<StatEntry> {
        if b.len() != Self::LEN {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("fixed layout"));
        let i = |at: usize| i128::from_le_bytes(b[at..at + 16].try_into().expect("fixed layout"));
        Some(StatEntry {
            stamp: FileStamp {
                dev: u(0),
                ino: u(8),
                size: u(16),
                mtime_ns: i(24),
                ctime_ns: i(40),
            },
            hash: Digest::from_bytes(b[56..88].try_into().expect("fixed layout")),
        })
    }
}

/// How often an entry was used: hits and the last one, in ms since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) hits: u64,
    pub(crate) last_hit_ms: u64,
}

impl Usage {
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.hits.to_le_bytes());
        b[8..].copy_from_slice(&self.last_hit_ms.to_le_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8; 16]) -> Usage {
        Usage {
            hits: u64::from_le_bytes(b[..8].try_into().expect("fixed layout")),
            last_hit_ms: u64::from_le_bytes(b[8..].try_into().expect("fixed layout")),
        }
    }

    pub(crate) fn merge(&mut self, other: Usage) {
        self.hits += other.hits;
        self.last_hit_ms = self.last_hit_ms.max(other.last_hit_ms);
    }
}

/// A compiled artefact's file hash, how long compiling took, and when it
/// was last loaded: what garbage collection weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompiledRecord {
    pub(crate) hash: Digest,
    pub(crate) compile_us: u64,
    pub(crate) last_used_ms: u64,
    pub(crate) len: u64,
}

impl CompiledRecord {
    const LEN: usize = 32 + 8 * 3;

    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut b = Vec::with_capacity(Self::LEN);
        b.extend_from_slice(self.hash.as_bytes());
        b.extend_from_slice(&self.compile_us.to_le_bytes());
        b.extend_from_slice(&self.last_used_ms.to_le_bytes());
        b.extend_from_slice(&self.len.to_le_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<CompiledRecord> {
        if b.len() != Self::LEN {
            return None;
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("fixed layout"));
        Some(CompiledRecord {
            hash: Digest::from_bytes(b[..32].try_into().expect("fixed layout")),
            compile_us: u(32),
            last_used_ms: u(40),
            len: u(48),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> KeyManifest {
        KeyManifest {
            component: "train".into(),
            closure: Digest::of(b"closure"),
            export: "example:ml/train@0.1.0#train".into(),
            signature: "func(data: borrow<blob>, epochs: u32) -> list<f32>".into(),
            args: vec![crate::entry::ArgManifest {
                name: "epochs".into(),
                digest: Digest::of(b"3"),
                shown: "3".into(),
            }],
            sandbox: Digest::of(b"sandbox"),
            grants: vec!["env K".into()],
            args_object: (Digest::of(b"args"), 9),
            blobs: vec![(Digest::of(b"blob"), 1 << 30)],
            inputs: vec![(Digest::of(b"in"), "/data/in.csv".into())],
        }
    }

    #[test]
    fn records_round_trip_with_their_manifest() {
        let r = ResultRecord {
            value: Digest::of(b"v"),
            value_len: 3,
            created_ms: 9,
            run_us: 1234,
            stdout: Some((Digest::of(b"out"), 3)),
            stderr: None,
            expires_ms: Some(77),
            bytes: 6,
        };
        let bytes = r.to_bytes(&manifest()).unwrap();
        assert_eq!(ResultRecord::from_bytes(&bytes), Some(r));
        assert_eq!(ResultRecord::manifest(&bytes), Some(manifest()));
        let json = serde_json::to_vec(&manifest()).unwrap();
        assert!(
            bytes.len() - ResultRecord::LEN < json.len() / 2,
            "binary manifest {} B, JSON {} B",
            bytes.len() - ResultRecord::LEN,
            json.len()
        );
        assert_eq!(ResultRecord::from_bytes(&[0; 3]), None);
        assert_eq!(
            ResultRecord::manifest(&bytes[..bytes.len() - 1]),
            None,
            "cut short"
        );
        let mut old = bytes.clone();
        old[0] = 2;
        assert_eq!(ResultRecord::from_bytes(&old), None, "other layouts miss");
        assert_eq!(ResultRecord::manifest(&old), None);
    }

    #[test]
    fn layout_3_records_with_json_manifests_still_read() {
        let r = ResultRecord {
            value: Digest::of(b"v"),
            value_len: 3,
            created_ms: 9,
            run_us: 1,
            stdout: None,
            stderr: None,
            expires_ms: None,
            bytes: 3,
        };
        let mut bytes = r.header();
        bytes[0] = ResultRecord::JSON_MANIFEST;
        bytes.extend(serde_json::to_vec(&manifest()).unwrap());
        assert_eq!(ResultRecord::from_bytes(&bytes), Some(r));
        assert_eq!(ResultRecord::manifest(&bytes), Some(manifest()));
    }

    #[test]
    fn usage_merges() {
        let mut u = Usage {
            hits: 2,
            last_hit_ms: 10,
        };
        u.merge(Usage {
            hits: 3,
            last_hit_ms: 5,
        });
        assert_eq!(
            Usage::from_bytes(&u.to_bytes()),
            Usage {
                hits: 5,
                last_hit_ms: 10
            }
        );
    }
}
