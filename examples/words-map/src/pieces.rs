// Cutting a text into pieces at word boundaries, and merging the pieces'
// counts: shared by `words-map` and `words-map-in-turn` (included, so that
// both build from the same code).

use std::collections::HashMap;

use cairn_guest::BlobWriter;

/// Bytes read at a time while copying a piece or looking for a boundary.
const STEP: u64 = 1 << 20;

/// `text` cut into at most `chunks` pieces, each ending just after a byte
/// that cannot be inside a word (ASCII, not a letter or digit), so that no
/// word is split. Empty pieces are dropped.
fn pieces(text: &Blob, chunks: u32) -> Vec<Blob> {
    let len = text.len();
    let chunks = u64::from(chunks.max(1));
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=chunks {
        let end = if i == chunks {
            len
        } else {
            boundary(text, (len * i / chunks).max(start))
        };
        if end > start {
            out.push(copy(text, start, end));
            start = end;
        }
    }
    out
}

/// The first offset at or after `at` that follows a non-word ASCII byte.
fn boundary(text: &Blob, mut at: u64) -> u64 {
    let len = text.len();
    while at < len {
        let bytes = text.read(at, STEP);
        if let Some(i) = bytes
            .iter()
            .position(|b| b.is_ascii() && !b.is_ascii_alphanumeric())
        {
            return at + i as u64 + 1;
        }
        at += bytes.len() as u64;
    }
    len
}

/// A new blob of `text[start..end]`.
fn copy(text: &Blob, start: u64, end: u64) -> Blob {
    let writer = BlobWriter::new();
    let mut at = start;
    while at < end {
        let bytes = text.read(at, STEP.min(end - at));
        at += bytes.len() as u64;
        writer.write(&bytes);
    }
    BlobWriter::finish(writer)
}

/// The `n` most frequent words of the merged `tallies`, most frequent
/// first, ties by word.
fn merged_top(tallies: impl IntoIterator<Item = WordCount>, n: u32) -> Vec<WordCount> {
    let mut merged: HashMap<String, u32> = HashMap::new();
    for WordCount { word, count } in tallies {
        *merged.entry(word).or_default() += count;
    }
    let mut all: Vec<WordCount> = merged
        .into_iter()
        .map(|(word, count)| WordCount { word, count })
        .collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    all.truncate(n as usize);
    all
}
