//! Writing to stdout.

use std::io::{BufWriter, StdoutLock, Write};

/// Prints a line to stdout, turning a write failure into a cairn error.
pub fn print_line(line: &str) -> cairn_host::Result<()> {
    writeln!(std::io::stdout(), "{line}").map_err(write_error)
}

/// Lines for stdout written in blocks: through `Stdout` alone, which is
/// line-buffered, a batch's thousands of results cost a `write` each.
/// Whoever writes to stderr (or to stdout another way) in between flushes
/// first, so that a terminal shows both in order.
pub struct Lines(BufWriter<StdoutLock<'static>>);

impl Lines {
    /// Buffers lines for stdout until [`Lines::flush`].
    pub fn new() -> Lines {
        Lines(BufWriter::new(std::io::stdout().lock()))
    }

    /// Adds a line.
    pub fn line(&mut self, line: &str) -> cairn_host::Result<()> {
        writeln!(self.0, "{line}").map_err(write_error)
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> cairn_host::Result<()> {
        self.0.flush().map_err(write_error)
    }
}

fn write_error(e: std::io::Error) -> cairn_host::Error {
    cairn_host::Error::new(
        cairn_host::ErrorKind::Io,
        format!("cannot write output: {e}"),
    )
    .with_source(e)
}
