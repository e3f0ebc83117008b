//! A result as the shared tier keeps it: the local record (header and key
//! manifest) followed by the entry's small objects, so that a remote hit on a
//! small value costs one round trip. Larger objects are in the object store.
//!
//! ```text
//! "CRR1" | u32 record length | record | u32 count | count × (u32 length | bytes)
//! ```
//!
//! Nothing here is trusted: the receiver hashes every inline object and
//! keeps only those the record names.

/// Objects up to this size travel inside the record.
pub(crate) const INLINE_MAX: usize = 16 * 1024;
/// At most this many bytes of objects travel inside one record.
pub(crate) const INLINE_TOTAL: usize = 256 * 1024;

const MAGIC: &[u8; 4] = b"CRR1";

/// Encodes a record and the objects sent with it.
pub(crate) fn encode(record: &[u8], inline: &[Vec<u8>]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).expect("records are small").to_le_bytes();
    let mut out =
        Vec::with_capacity(12 + record.len() + inline.iter().map(|o| 4 + o.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len(record.len()));
    out.extend_from_slice(record);
    out.extend_from_slice(&len(inline.len()));
    for o in inline {
        out.extend_from_slice(&len(o.len()));
        out.extend_from_slice(o);
    }
    out
}

/// The record and inline objects of `bytes`; `None` for anything else.
pub(crate) fn decode(bytes: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (record, mut rest) = take(rest)?;
    let (count, r) = rest.split_first_chunk::<4>()?;
    rest = r;
    let count = u32::from_le_bytes(*count) as usize;
    let mut inline = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let (o, r) = take(rest)?;
        inline.push(o);
        rest = r;
    }
    rest.is_empty().then_some((record, inline))
}

fn take(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let bytes = encode(b"record", &[b"a".to_vec(), Vec::new(), b"ccc".to_vec()]);
        let (record, inline) = decode(&bytes).unwrap();
        assert_eq!(record, b"record");
        assert_eq!(inline, [&b"a"[..], b"", b"ccc"]);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none(), "cut short");
        assert!(
            decode(b"CRR1\xff\xff\xff\xff").is_none(),
            "length past the end"
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_none(), "trailing bytes");
        assert!(decode(b"nope").is_none());
    }
}
