//! What a run shows while it runs: a live line on a terminal (current call,
//! calls done, hits, elapsed, bytes hashed and read with the rate) and, with
//! `--verbose`, each call's captured output as the call finishes.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cairn_host::{CacheStatus, CallRecord, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Observes the calls of a `cairn run`.
pub struct Progress {
    bar: Option<ProgressBar>,
    verbose: AtomicBool,
    done: AtomicU64,
    hits: AtomicU64,
}

impl Progress {
    /// A live display if stderr is a terminal and `quiet` is false (`--json`);
    /// captured output printed as calls finish if `verbose`.
    /// `meter` gives the bytes hashed and read so far.
    pub fn new(quiet: bool, verbose: bool, meter: cairn_host::IoMeter) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            let start = (meter.bytes_hashed(), meter.bytes_read());
            let io = move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&io_line(
                    meter.bytes_hashed() - start.0,
                    meter.bytes_read() - start.1,
                    state.elapsed(),
                ));
            };
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix}{io} {wide_msg}")
                    .expect("a valid template")
                    .with_key("io", io),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            verbose: AtomicBool::new(verbose),
            done: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// Stops printing captured output (a command's is printed as its own).
    pub fn quiet_output(&self) {
        self.verbose.store(false, Ordering::Relaxed);
    }

    /// Says what is happening before the first call starts.
    pub fn status(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Removes the live display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn counts(&self) -> String {
        format!(
            "{} done, {} hits",
            self.done.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed)
        )
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    /// An early return (an error) clears the line too, before the error prints.
    fn drop(&mut self) {
        self.finish();
    }
}

impl Observer for Progress {
    fn call_started(&self, component: &str, export: &str, depth: u32) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(self.counts());
            bar.set_message(format!(
                "{}{} {export}",
                "  ".repeat(depth as usize),
                super::fmt::stem(component)
            ));
        }
    }

    fn call_finished(&self, call: &CallRecord) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if call.cache == CacheStatus::Hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.set_prefix(self.counts());
        }
        if self.verbose.load(Ordering::Relaxed) {
            for (stream, bytes) in [("stdout", &call.stdout), ("stderr", &call.stderr)] {
                for line in String::from_utf8_lossy(bytes).lines() {
                    self.say(&format!("[{} {stream}] {line}", call.component));
                }
            }
        }
    }
}

/// `, 64.0 MiB hashed, 12.0 MiB read (40.0 MiB/s)`: what was hashed and read
/// so far, and the rate over `elapsed`; empty when nothing was.
fn io_line(hashed: u64, read: u64, elapsed: Duration) -> String {
    use super::fmt::size;
    let mut out = String::new();
    if hashed > 0 {
        out += &format!(", {} hashed", size(hashed));
    }
    if read > 0 {
        out += &format!(", {} read", size(read));
    }
    let secs = elapsed.as_secs_f64();
    if hashed + read > 0 && secs >= 0.5 {
        out += &format!(" ({}/s)", size(((hashed + read) as f64 / secs) as u64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_io_line_shows_bytes_and_rate_when_known() {
        assert_eq!(io_line(0, 0, Duration::from_secs(3)), "");
        assert_eq!(
            io_line(1 << 20, 3 << 20, Duration::from_secs(2)),
            ", 1.0 MiB hashed, 3.0 MiB read (2.0 MiB/s)"
        );
        assert_eq!(io_line(0, 1024, Duration::ZERO), ", 1.0 KiB read");
    }
}
