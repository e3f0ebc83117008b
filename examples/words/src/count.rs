//! The word-count kernel, shared by the task (over a blob) and by cairn's
//! benchmark (natively, over a file) so both run the very same code.

use std::collections::HashMap;
use std::io::Read;

/// Calls `each` with every lowercased word read from `text`, in 1 MiB chunks.
/// Words are runs of letters and digits.
pub fn for_each_word(mut text: impl Read, mut each: impl FnMut(&str)) {
    let mut buf = vec![0u8; 1 << 20];
    let mut word = String::new();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = text.read(&mut buf).expect("reads of the text do not fail");
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

/// Every word of `text` with its count, in no particular order.
fn counts(text: impl Read) -> Vec<(String, u32)> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for_each_word(text, |w| match counts.get_mut(w) {
        Some(c) => *c += 1,
        None => {
            counts.insert(w.to_string(), 1);
        }
    });
    counts.into_iter().collect()
}

/// Every word of `text` with its count, ordered by word.
#[allow(dead_code, reason = "the benchmark's native build uses only `top`")]
pub fn tally(text: impl Read) -> Vec<(String, u32)> {
    let mut all = counts(text);
    all.sort();
    all
}

/// The `n` most frequent words of `text`, most frequent first, ties by word.
pub fn top(text: impl Read, n: usize) -> Vec<(String, u32)> {
    let mut all = counts(text);
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}
