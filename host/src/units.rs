//! Durations and sizes for people: how the command line, the HTML run graph
//! and `config.toml` print and read them, in one place so they agree.
//!
//! Layer: bottom (data); imports nothing from the crate.

use std::time::Duration;

/// A duration for people: `N µs` under a millisecond, `N.N ms` under a
/// second, `N.NN s` above, rounded to the nearest shown digit (`999.96 ms`
/// is `1.00 s`).
///
/// ```
/// use std::time::Duration;
/// use cairn_host::units::duration;
///
/// assert_eq!(duration(Duration::from_micros(360)), "360 µs");
/// assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
/// assert_eq!(duration(Duration::from_millis(1197)), "1.20 s");
/// ```
pub fn duration(d: Duration) -> String {
    // Nearest microsecond; a duration beyond u64 µs (half a million years)
    // is shown as the largest.
    let us = u64::try_from((d.as_nanos() + 500) / 1_000).unwrap_or(u64::MAX);
    micros(us)
}

/// [`duration`] of a count of microseconds (how run records and cache
/// entries keep times).
///
/// ```
/// assert_eq!(cairn_host::units::micros(999), "999 µs");
/// assert_eq!(cairn_host::units::micros(1_000), "1.0 ms");
/// ```
pub fn micros(us: u64) -> String {
    if us < 1_000 {
        return format!("{us} µs");
    }
    let tenths_ms = us.saturating_add(50) / 100;
    if tenths_ms < 10_000 {
        return format!("{}.{} ms", tenths_ms / 10, tenths_ms % 10);
    }
    let hundredths_s = us.saturating_add(5_000) / 10_000;
    format!("{}.{:02} s", hundredths_s / 100, hundredths_s % 100)
}

/// A size for people, in binary units: `512 B`, `1.2 MiB`, `10.0 GiB`.
///
/// [`parse_size`] reads it back (to within the digit shown).
///
/// ```
/// assert_eq!(cairn_host::units::size(1536), "1.5 KiB");
/// ```
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// Reads a size written for people: a number of bytes (`1048576`) or a
/// number and a unit, decimal or binary, any case, spaced or not (`2GB`,
/// `512MiB`, `100 KB`, `1.5 gib`).
///
/// # Errors
/// A one-line message saying what could not be read, e.g. for `lots`.
///
/// ```
/// use cairn_host::units::parse_size;
///
/// assert_eq!(parse_size("512MiB"), Ok(512 << 20));
/// assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
/// assert_eq!(parse_size("100 KB"), Ok(100_000));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    Ok(text.parse::<bytesize::ByteSize>()?.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(micros(0), "0 µs");
        assert_eq!(micros(999), "999 µs");
        assert_eq!(micros(1_000), "1.0 ms");
        assert_eq!(micros(1_234), "1.2 ms");
        assert_eq!(micros(999_900), "999.9 ms");
        assert_eq!(micros(999_960), "1.00 s");
        assert_eq!(micros(1_000_000), "1.00 s");
        assert_eq!(micros(2_240_000), "2.24 s");
        assert_eq!(micros(83_456_789), "83.46 s");
        assert_eq!(micros(u64::MAX), "18446744073709.55 s");
    }

    #[test]
    fn durations_round_to_the_microsecond() {
        assert_eq!(duration(Duration::ZERO), "0 µs");
        assert_eq!(duration(Duration::from_nanos(499)), "0 µs");
        assert_eq!(duration(Duration::from_nanos(999_600)), "1.0 ms");
        assert_eq!(duration(Duration::from_micros(360)), "360 µs");
        assert_eq!(duration(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(duration(Duration::from_millis(1197)), "1.20 s");
        assert_eq!(duration(Duration::MAX), micros(u64::MAX));
    }

    #[test]
    fn sizes_read_and_print() {
        for (text, bytes) in [
            ("0", 0),
            ("1B", 1),
            ("1048576", 1 << 20),
            ("512MiB", 512 << 20),
            ("512mib", 512 << 20),
            ("2GB", 2_000_000_000),
            ("100 KB", 100_000),
            ("1.5 GiB", 3 << 29),
            ("10GiB", 10 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "lots", "12 parsecs", "-1MB"] {
            let err = parse_size(bad).unwrap_err();
            assert!(!err.is_empty() && !err.contains('\n'), "{bad}: {err}");
        }
        assert_eq!(size(1), "1 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(10 << 30), "10.0 GiB");
        assert_eq!(parse_size(&size(10 << 30)), Ok(10 << 30));
    }
}
