//! Formatting for people: durations, sizes, ages, tables.

pub use cairn_host::units::{duration, micros, size};

/// How long ago `ms` (since the epoch) was: `5s ago`, `3h ago`, `2d ago`.
pub fn ago(ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}min ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// Milliseconds since the epoch now, by the clock the cache keeps
/// (`CAIRN_NOW_MS` when set), so "ago" agrees with the entries' times.
pub fn now_ms() -> u64 {
    cairn_host::clock::from_env().now_ms()
}

pub use cairn_host::graph::{stem, timestamp};

/// Lines of left-aligned columns (the last column is not padded).
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_people() {
        assert_eq!(duration(std::time::Duration::from_micros(360)), "360 µs");
        assert_eq!(duration(std::time::Duration::from_millis(12)), "12.0 ms");
        assert_eq!(micros(1_197_000), "1.20 s");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(ago(0, 3 * 3_600_000), "3h ago");
        assert_eq!(
            table(&[
                vec!["a".into(), "bb".into()],
                vec!["ccc".into(), "d".into()]
            ]),
            ["a    bb", "ccc  d"]
        );
    }
}
