//! The deadline clock behind [`Limits::timeout`](crate::Limits): epoch
//! interruption, with a tick as coarse as the timeout allows.
//!
//! The cost of a deadline is the epoch check compiled into every loop and
//! function entry, paid whatever the tick; the tick only sets how late a
//! deadline may be noticed and how often a thread wakes. So the tick is a
//! twentieth of the timeout, between 10 ms and 1 s: a 200 ms limit is kept to
//! within 10 ms, the default of 10 minutes to within a second, with one
//! wake-up a second.

use std::time::Duration;

use wasmtime::Engine;

use crate::error::{Error, Result};

/// The finest tick (the resolution of short timeouts).
const FINEST: Duration = Duration::from_millis(10);
/// The coarsest tick.
const COARSEST: Duration = Duration::from_secs(1);

/// How often the clock ticks for `timeout`.
pub(super) fn tick(timeout: Duration) -> Duration {
    (timeout / 20).clamp(FINEST, COARSEST)
}

/// Starts the thread that ticks `engine`'s epoch every `tick` while the
/// engine lives.
pub(super) fn start_clock(engine: &Engine, tick: Duration) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("cairn-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map_err(|e| Error::internal(format!("cannot start the deadline clock: {e}")))?;
    Ok(())
}

/// The epoch deadline, in ticks, for `timeout`: at most a century, far
/// enough and no overflow in the engine.
pub(super) fn ticks(timeout: Duration) -> u64 {
    let tick = tick(timeout);
    let century = (100 * 365 * 24 * 3600 * 1000) / tick.as_millis() as u64;
    u64::try_from(timeout.as_nanos().div_ceil(tick.as_nanos())).map_or(century, |n| n.min(century))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_follows_the_timeout_within_bounds() {
        assert_eq!(tick(Duration::from_millis(50)), FINEST);
        assert_eq!(tick(Duration::from_secs(4)), Duration::from_millis(200));
        assert_eq!(tick(Duration::from_secs(600)), COARSEST);
        assert_eq!(ticks(Duration::from_millis(50)), 5);
        assert_eq!(ticks(Duration::from_secs(600)), 600);
        assert!(ticks(Duration::MAX) > 0);
    }
}
