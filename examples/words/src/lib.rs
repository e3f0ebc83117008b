//! Word frequencies over a text passed by reference: the text is a host
//! `blob`, so the cache key is its hash and a cached run never reads it.

use std::collections::HashMap;
use std::io::Read;

use cairn_guest::{Blob, BlobExt};

wit_bindgen::generate!({
    path: "wit",
    world: "example:words/words",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use exports::example::words::count::{Guest, WordCount};

/// Calls `each` with every lowercased word of `text`, streaming it in chunks.
fn for_each_word(text: &Blob, mut each: impl FnMut(&str)) {
    let mut reader = text.reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut word = String::new();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = reader.read(&mut buf).expect("blob reads do not fail");
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        // Decode what is complete; keep a split UTF-8 sequence for the next chunk.
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(1),
        };
        for c in String::from_utf8_lossy(&pending[..valid]).chars() {
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if !word.is_empty() {
                each(&word);
                word.clear();
            }
        }
        pending.drain(..valid);
    }
    if !word.is_empty() {
        each(&word);
    }
}

struct Words;

impl Guest for Words {
    fn top(text: &Blob, n: u32) -> Vec<WordCount> {
        let mut counts: HashMap<String, u32> = HashMap::new();
        for_each_word(text, |w| match counts.get_mut(w) {
            Some(c) => *c += 1,
            None => {
                counts.insert(w.to_string(), 1);
            }
        });
        let mut all: Vec<(String, u32)> = counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.into_iter()
            .take(n as usize)
            .map(|(word, count)| WordCount { word, count })
            .collect()
    }

    fn total(text: &Blob) -> u64 {
        let mut n = 0;
        for_each_word(text, |_| n += 1);
        n
    }
}

export!(Words);
