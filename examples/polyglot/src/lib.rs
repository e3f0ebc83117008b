//! `polyglot`: one report over a CSV from children in several languages —
//! its numeric columns from the Python task `py-stats` and its most frequent
//! words from the Rust task `words`. Each child call is cached on its own:
//! change one child and only it (and this flow) runs again.
//!
//! Every section is a title and rows of cells, rendered by [`table`]; a
//! renderer task in another language can take its place as one more import
//! of the same shape (`table: func(title: string, rows: list<list<string>>)
//! -> string`).

wit_bindgen::generate!({
    path: "wit",
    world: "example:polyglot/polyglot",
    with: {
        "cairn:task/blobs@0.1.0": cairn_guest::blobs,
        "example:stats/columns@0.1.0": generate,
        "example:words/count@0.1.0": generate,
    },
});

use example::stats::columns;
use example::words::count;

/// How many of the most frequent words the report lists.
const TOP_WORDS: usize = 5;
/// How many of the most frequent words to ask for: numbers are words to
/// `words` and are left out of the list, so more than `TOP_WORDS`.
const ASK_WORDS: u32 = 50;

struct Polyglot;

impl Guest for Polyglot {
    fn report(csv: &Blob) -> String {
        let sections = [
            ("Numeric columns (py-stats, Python)", stats_rows(csv)),
            ("Most frequent words, numbers left out (words, Rust)", word_rows(csv)),
        ];
        sections
            .iter()
            .map(|(title, rows)| table(title, rows))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A header row, then one row per numeric column of `csv`.
fn stats_rows(csv: &Blob) -> Vec<Vec<String>> {
    let header = ["column", "count", "mean", "min", "max", "stddev"];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(columns::describe(csv).into_iter().map(|c| {
        vec![
            c.name,
            c.count.to_string(),
            number(c.mean),
            number(c.min),
            number(c.max),
            number(c.stddev),
        ]
    }));
    rows
}

/// A header row, then the most frequent words of `csv` that are not
/// numbers (the values of its text columns), with their counts.
fn word_rows(csv: &Blob) -> Vec<Vec<String>> {
    let mut rows = vec![vec!["word".to_string(), "count".to_string()]];
    rows.extend(
        count::top(csv, ASK_WORDS)
            .into_iter()
            .filter(|w| !w.word.chars().all(|c| c.is_ascii_digit()))
            .take(TOP_WORDS)
            .map(|w| vec![w.word, w.count.to_string()]),
    );
    rows
}

/// `x` with at most three decimals, without trailing zeros.
fn number(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_string()
}

/// `title`, then `rows` (the first is the header) in aligned columns: the
/// first left-aligned, the others right-aligned.
fn table(title: &str, rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{title}\n");
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| match i {
                0 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

export!(Polyglot);
