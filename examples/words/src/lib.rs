//! Word frequencies over a text passed by reference: the text is a host
//! `blob`, so the cache key is its hash and a cached run never reads it.

mod count;

use cairn_guest::{Blob, BlobExt};

wit_bindgen::generate!({
    path: "wit",
    world: "example:words/words",
    with: { "cairn:task/blobs@0.1.0": cairn_guest::blobs },
});

use exports::example::words::count::{Guest, WordCount};

struct Words;

impl Guest for Words {
    fn top(text: &Blob, n: u32) -> Vec<WordCount> {
        count::top(text.reader(), n as usize)
            .into_iter()
            .map(|(word, count)| WordCount { word, count })
            .collect()
    }

    fn total(text: &Blob) -> u64 {
        let mut n = 0;
        count::for_each_word(text.reader(), |_| n += 1);
        n
    }

    fn tally(text: &Blob) -> Vec<WordCount> {
        count::tally(text.reader())
            .into_iter()
            .map(|(word, count)| WordCount { word, count })
            .collect()
    }
}

export!(Words);
