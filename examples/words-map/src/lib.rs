//! `words-map`: word counts as a map over chunks of a text. The `count`
//! import is `async` (see `wit/deps/words/count.wit`), so the flow starts
//! every chunk's count and awaits them together; cairn runs them in
//! parallel, each through the cache, and a piece seen before is a hit.

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

include!("pieces.rs");

struct WordsMap;

impl Guest for WordsMap {
    async fn top(text: &Blob, chunks: u32, n: u32) -> Vec<WordCount> {
        let pieces = pieces(text, chunks);
        let tallies = join_all(pieces.iter().map(count::tally)).await;
        merged_top(tallies.into_iter().flatten(), n)
    }

    async fn total(text: &Blob, chunks: u32) -> u64 {
        let pieces = pieces(text, chunks);
        join_all(pieces.iter().map(count::total)).await.into_iter().sum()
    }
}

export!(WordsMap);
