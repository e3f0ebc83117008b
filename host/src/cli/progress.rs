//! What a run shows while it runs: a live line on a terminal (current call,
//! calls done, hits, elapsed) and, with `--verbose`, each call's captured
//! output as the call finishes.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_host::{CacheStatus, CallRecord, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Observes the calls of a `cairn run`.
pub struct Progress {
    bar: Option<ProgressBar>,
    verbose: bool,
    done: AtomicU64,
    hits: AtomicU64,
}

impl Progress {
    /// A live display if stderr is a terminal and `quiet` is false (`--json`);
    /// captured output printed as calls finish if `verbose`.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix} {wide_msg}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            verbose,
            done: AtomicU64::new(0),
            hits: AtomicU64::new(0),
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
        if self.verbose {
            for (stream, bytes) in [("stdout", &call.stdout), ("stderr", &call.stderr)] {
                for line in String::from_utf8_lossy(bytes).lines() {
                    self.say(&format!("[{} {stream}] {line}", call.component));
                }
            }
        }
    }
}
