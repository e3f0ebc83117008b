//! `words-map-in-turn`: `words-map` with a plain (sync) `count` import, so
//! its calls run one after the other. It exists to be compared with
//! `words-map`, which awaits them all at once.

wit_bindgen::generate!({
    path: "wit",
    world: "example:words-map-in-turn/words-map-in-turn",
    with: {
        "cairn:task/blobs@0.1.0": cairn_guest::blobs,
        "example:words/count@0.1.0": generate,
    },
});

use example::words::count;

include!("../../words-map/src/pieces.rs");

struct InTurn;

impl Guest for InTurn {
    fn top(text: &Blob, chunks: u32, n: u32) -> Vec<WordCount> {
        let pieces = pieces(text, chunks);
        merged_top(pieces.iter().flat_map(count::tally), n)
    }

    fn total(text: &Blob, chunks: u32) -> u64 {
        pieces(text, chunks).iter().map(count::total).sum()
    }
}

export!(InTurn);
