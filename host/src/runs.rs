//! Run history: every top-level call is recorded with its whole call tree,
//! so `cairn runs` can list what ran and `cairn graph` can draw it.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use serde::{Deserialize, Serialize};

use std::time::Instant;

use crate::digest::Digest;
use crate::report::{CacheStatus, CallRecord};

/// One recorded run: a top-level call and every call it made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id, increasing with time in one cache.
    pub id: u64,
    /// When the run started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Wall time of the whole run, in microseconds.
    pub elapsed_us: u64,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// Every call, the root first, each followed by the calls it made in
    /// the order it made them.
    pub calls: Vec<RunCall>,
}

/// One call of a recorded run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunCall {
    /// The called task's name.
    pub component: String,
    /// The export path.
    pub export: String,
    /// The call's key.
    pub key: Digest,
    /// Hit, miss, expired or uncacheable.
    pub cache: CacheStatus,
    /// When the call started, in microseconds since the run started.
    #[serde(default)]
    pub start_us: u64,
    /// Wall time of the call, including the calls it made, in microseconds.
    pub elapsed_us: u64,
    /// Execution time in microseconds: this run's on a miss, the producing
    /// run's on a hit (what the hit saved).
    pub run_us: u64,
    /// The index in [`RunRecord::calls`] of the call that made this one;
    /// `None` for the root.
    pub parent: Option<usize>,
}

impl RunRecord {
    /// The record of a run that started at `start` and made `calls` (each
    /// followed by its own, with depths), ending at `now_ms` by the cache's clock;
    /// numbered when it is stored.
    pub(crate) fn of(
        calls: &[CallRecord],
        start: Instant,
        error: Option<String>,
        now_ms: u64,
    ) -> RunRecord {
        let started_ms = now_ms.saturating_sub(start.elapsed().as_millis() as u64);
        // Each call is followed by the calls it made: a call's parent is the
        // nearest earlier call one level up.
        let mut open: Vec<usize> = Vec::new();
        let calls = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                open.truncate(c.depth as usize);
                let parent = open.last().copied();
                open.push(i);
                RunCall {
                    component: c.component.clone(),
                    export: c.export.clone(),
                    key: c.key,
                    cache: c.cache,
                    start_us: c.start.as_micros() as u64,
                    elapsed_us: c.elapsed.as_micros() as u64,
                    run_us: c.run.as_micros() as u64,
                    parent,
                }
            })
            .collect();
        RunRecord {
            id: 0,
            started_ms,
            elapsed_us: start.elapsed().as_micros() as u64,
            error,
            calls,
        }
    }

    /// The root call, if the run got as far as making one.
    pub fn root(&self) -> Option<&RunCall> {
        self.calls.first()
    }

    /// Calls answered from the cache.
    pub fn hits(&self) -> usize {
        self.count(|c| c.cache == CacheStatus::Hit)
    }

    /// Calls executed (misses, expired entries and uncacheable calls).
    pub fn executed(&self) -> usize {
        self.count(|c| c.cache != CacheStatus::Hit)
    }

    /// Execution time saved by hits, in microseconds: the producing runs'
    /// time of every hit that was not inside another hit.
    pub fn saved_us(&self) -> u64 {
        self.calls
            .iter()
            .filter(|c| c.cache == CacheStatus::Hit)
            .map(|c| c.run_us)
            .sum()
    }

    fn count(&self, f: impl Fn(&RunCall) -> bool) -> usize {
        self.calls.iter().filter(|c| f(c)).count()
    }
}
