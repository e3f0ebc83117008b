//! blake3 digests: the identity of components, values, blobs and calls.
//!
//! Layer: bottom (data); imports nothing from the crate.

use std::fmt;
use std::io;
use std::path::Path;

/// A 32-byte blake3 hash.
///
/// Components are named by the digest of their bytes, values and blobs by the
/// digest of their content, and calls by the digest of their key inputs (see
/// [`crate::key`]). `Display` gives 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// A map keyed by digests hashes 8 of their 32 bytes: they are uniformly
/// random already, and a map's keyed SipHash of them cannot be steered, so
/// the other 24 only cost time (a `--batch` of hits hashes each key into
/// several maps).
impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (head, _) = self.0.split_first_chunk::<8>().expect("32 bytes");
        state.write_u64(u64::from_le_bytes(*head));
    }
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The 32 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Digest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Digest(out))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.with_hex(str::to_string)
    }

    /// `f` of the 64 hex digits, written on the stack: `hex::encode`
    /// collects a `String` a `char` at a time, which the hit path (run
    /// records, statistics) paid per key.
    fn with_hex<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        let mut buf = [0u8; 64];
        hex::encode_to_slice(self.0, &mut buf).expect("64 digits for 32 bytes");
        f(std::str::from_utf8(&buf).expect("hex digits are ASCII"))
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_hex(|hex| f.write_str(hex))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

/// Hex in formats people read (JSON), the 32 bytes themselves in binary ones.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.with_hex(|hex| s.serialize_str(hex))
        } else {
            serde::Serialize::serialize(&self.0, s)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Digest, D::Error> {
        if !d.is_human_readable() {
            return <[u8; 32] as serde::Deserialize>::deserialize(d).map(Digest);
        }
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Digest {
        Digest(*h.as_bytes())
    }
}

/// Hashes a file's content without loading it into memory: memory-mapped and,
/// for large files, hashed on every core. Returns the digest and the length.
pub(crate) fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path)?;
    Ok((hasher.finalize().into(), hasher.count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        let d = Digest::of(b"cairn");
        assert_eq!(Digest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::from_hex("zz"), None);
        assert_eq!(Digest::from_hex(&d.to_hex()[..60]), None);
    }

    #[test]
    fn file_hash_equals_memory_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            (Digest::of(&data), data.len() as u64)
        );
    }
}
