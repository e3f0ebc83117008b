//! `words-map`: word counts as a map over chunks of a text. The `count`
//! import is `async` (see `wit/deps/words/count.wit`), so the flow starts
//! every chunk's count and awaits them together; cairn runs them in
//! parallel, each through the cache, and a piece seen before is a hit.

use std::collections::HashMap;

use cairn_guest::BlobWriter;
use futures::future::join_all;

wit_bindgen::generate!({
    path: "wit",
    world: "example:words-map/words-map",
    with: {
        "cairn:task/blobs@0.1.0": cairn_guest::blobs,
        "example:words/count@0.1.0": generate,
    },
});

use example::words::count;

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

struct WordsMap;

impl Guest for WordsMap {
    async fn top(text: &Blob, chunks: u32, n: u32) -> Vec<WordCount> {
        let pieces = pieces(text, chunks);
        let tallies = join_all(pieces.iter().map(count::tally)).await;
        let mut merged: HashMap<String, u32> = HashMap::new();
        for WordCount { word, count } in tallies.into_iter().flatten() {
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

    async fn total(text: &Blob, chunks: u32) -> u64 {
        let pieces = pieces(text, chunks);
        join_all(pieces.iter().map(count::total)).await.into_iter().sum()
    }
}

export!(WordsMap);
