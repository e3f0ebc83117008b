//! `polyglot`: one report over a CSV from children in three languages —
//! its first rows and its numeric columns rendered as Markdown by the
//! JavaScript task `js-report`, the columns described by the Python task
//! `py-stats`, and its most frequent words counted by the Rust task `words`
//! (rendered here, by [`table`]). Each child call is cached on its own:
//! change one child and only it (and this flow) runs again.

wit_bindgen::generate!({
    path: "wit",
    world: "example:polyglot/polyglot",
    with: {
        "cairn:task/blobs@0.1.0": cairn_guest::blobs,
        "example:stats/columns@0.1.0": generate,
        "example:words/count@0.1.0": generate,
        "example:report/markdown@0.1.0": generate,
    },
});

use example::report::markdown;
use example::stats::columns;
use example::words::count;

/// How many of the CSV's first records the report shows.
const HEAD_ROWS: u32 = 3;

/// How many of the most frequent words the report lists.
const TOP_WORDS: usize = 5;
/// How many of the most frequent words to ask for: numbers are words to
/// `words` and are left out of the list, so more than `TOP_WORDS`.
const ASK_WORDS: u32 = 50;

struct Polyglot;

impl Guest for Polyglot {
    fn report(csv: &Blob) -> String {
        let head = markdown::head(csv, HEAD_ROWS);
        let stats = markdown::table(
            "Numeric columns (py-stats, Python; js-report, JavaScript)",
            &stats_rows(csv),
        );
        let words = table(
            "Most frequent words, numbers left out (words, Rust)",
            &word_rows(csv),
        );
        [
            "## First rows (js-report, JavaScript)\n".to_string(),
            head,
            stats,
            words,
        ]
        .join("\n")
    }
}

/// The numeric columns of `csv`, as `js-report` renders them.
fn stats_rows(csv: &Blob) -> Vec<markdown::Row> {
    columns::describe(csv)
        .into_iter()
        .map(|c| markdown::Row {
            name: c.name,
            count: c.count,
            mean: c.mean,
            min: c.min,
            max: c.max,
            stddev: c.stddev,
        })
        .collect()
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

/// `rows` (the first is the header) as a Markdown table under the heading
/// `title`, in the layout of `js-report`: the first column left-aligned,
/// the others right-aligned.
fn table(title: &str, rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = format!("## {title}\n\n");
    if let Some((header, body)) = rows.split_first() {
        out.push_str(&line(header));
        let rule: Vec<&str> = (0..header.len())
            .map(|i| if i == 0 { ":---" } else { "---:" })
            .collect();
        out.push_str(&format!("|{}|\n", rule.join("|")));
        body.iter().for_each(|row| out.push_str(&line(row)));
    }
    out
}

export!(Polyglot);
