//! Writing to stdout.

use std::io::Write;

/// Prints a line to stdout, turning a write failure into a cairn error.
pub fn print_line(line: &str) -> cairn_host::Result<()> {
    writeln!(std::io::stdout(), "{line}").map_err(|e| {
        cairn_host::Error::new(
            cairn_host::ErrorKind::Io,
            format!("cannot write output: {e}"),
        )
        .with_source(e)
    })
}
