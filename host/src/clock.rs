//! The time the cache sees: when results were made and last used, when they
//! expire, and how old a file or an entry is.
//!
//! Everything that reads the time for the cache's own bookkeeping reads it
//! from a [`Clock`], never from the system directly, so that tests (and
//! embedders replaying a past day) set the time instead of waiting for it.
//! The clock also judges whether a file is old enough for its `stat` to
//! vouch for its content (a file modified within 100 ms of being hashed is
//! hashed again next time). Tasks never see this clock: the sandbox fixes
//! theirs (see [`crate::sandbox`]). Durations a call measures for itself
//! (how long it ran) use the monotonic clock, and the grace period that
//! protects another process's fresh objects from sweeping uses real time:
//! neither is part of this.
//!
//! Imports nothing from the crate: it is in the bottom layer.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;

    /// Now, in milliseconds since the Unix epoch (0 before it).
    fn now_ms(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// The system's wall clock: the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until it is set or advanced: for tests, and
/// for the `CAIRN_NOW_MS` setting of the CLI.
///
/// ```
/// use cairn_host::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at_ms(1_000);
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 3_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms` milliseconds since the Unix epoch.
    pub fn at_ms(ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// A clock showing the system's time now (and then standing still).
    pub fn starting_now() -> ManualClock {
        ManualClock::at_ms(SystemClock.now_ms())
    }

    /// Sets the time to `ms` milliseconds since the Unix epoch.
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }

    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The clock named by the environment: a [`ManualClock`] at `CAIRN_NOW_MS`
/// (milliseconds since the Unix epoch) when that is set, else the system's.
/// The CLI reads it so that black-box tests can run "an hour later" without
/// waiting an hour.
pub fn from_env() -> Arc<dyn Clock> {
    match std::env::var("CAIRN_NOW_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(ms) => Arc::new(ManualClock::at_ms(ms)),
        None => Arc::new(SystemClock),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at_ms(5);
        assert_eq!(c.now_ms(), 5);
        assert_eq!(c.now_ms(), 5);
        c.advance(Duration::from_millis(10));
        assert_eq!(c.now_ms(), 15);
        let shared = c.clone();
        shared.set_ms(100);
        assert_eq!(c.now_ms(), 100);
        assert_eq!(c.now(), UNIX_EPOCH + Duration::from_millis(100));
    }
}
