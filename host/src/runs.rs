//! Run history: every top-level call is recorded with its whole call tree,
//! so `cairn runs` can list what ran and `cairn graph` can draw it.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use serde::{Deserialize, Serialize};

use std::time::Instant;

use crate::digest::Digest;
use crate::report::{CacheStatus, CallRecord};

/// One recorded run: a top-level call (or, for a batch, each of its
/// top-level calls) and every call it made.
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
    /// the order it made them; a batch's roots follow one another so.
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

impl RunCall {
    /// The calls of one top-level call as a run records them: `calls`, each
    /// followed by the calls it made (with depths), which started
    /// `offset_us` after the run; parents are indices into the result.
    pub(crate) fn tree(calls: &[CallRecord], offset_us: u64) -> Vec<RunCall> {
        // Each call is followed by the calls it made: a call's parent is the
        // nearest earlier call one level up.
        let mut open: Vec<usize> = Vec::new();
        calls
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
                    start_us: offset_us + c.start.as_micros() as u64,
                    elapsed_us: c.elapsed.as_micros() as u64,
                    run_us: c.run.as_micros() as u64,
                    parent,
                }
            })
            .collect()
    }
}

impl RunRecord {
    /// The record of a run that started at `start` and made `calls` (each
    /// followed by its own, with depths), ending at `now_ms` by the cache's clock;
    /// numbered when it is stored.
    #[cfg(test)]
    pub(crate) fn of(
        calls: &[CallRecord],
        start: Instant,
        error: Option<String>,
        now_ms: u64,
    ) -> RunRecord {
        RunRecord::of_trees([RunCall::tree(calls, 0)], start, error, now_ms)
    }

    /// The record of a run of several top-level calls (`cairn run --batch`):
    /// one [`RunCall::tree`] each, in order.
    pub(crate) fn of_trees(
        trees: impl IntoIterator<Item = Vec<RunCall>>,
        start: Instant,
        error: Option<String>,
        now_ms: u64,
    ) -> RunRecord {
        let started_ms = now_ms.saturating_sub(start.elapsed().as_millis() as u64);
        let mut calls = Vec::new();
        for tree in trees {
            let base = calls.len();
            calls.extend(tree.into_iter().map(|c| RunCall {
                parent: c.parent.map(|p| p + base),
                ..c
            }));
        }
        RunRecord {
            id: 0,
            started_ms,
            elapsed_us: start.elapsed().as_micros() as u64,
            error,
            calls,
        }
    }

    /// The root call, if the run got as far as making one: the first of a
    /// batch's.
    pub fn root(&self) -> Option<&RunCall> {
        self.calls.first()
    }

    /// The top-level calls: one, or each of a batch's (`cairn run --batch`
    /// or several `--invoke`s record one run).
    pub fn roots(&self) -> impl Iterator<Item = &RunCall> {
        self.calls.iter().filter(|c| c.parent.is_none())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(name: &str, depth: u32, start_us: u64) -> CallRecord {
        let key = Digest::of(name.as_bytes());
        CallRecord::started(
            name.into(),
            "f".into(),
            key,
            depth,
            Duration::from_micros(start_us),
        )
    }

    #[test]
    fn a_batch_is_one_run_whose_roots_are_its_calls_in_order() {
        // A flow calling two tasks, then a task alone, 500 µs into the run.
        let flow = [call("flow", 0, 0), call("a", 1, 10), call("b", 1, 20)];
        let trees = [
            RunCall::tree(&flow, 0),
            RunCall::tree(&[call("c", 0, 0)], 500),
        ];
        let run = RunRecord::of_trees(trees, Instant::now(), None, 1_000);
        let parents: Vec<_> = run.calls.iter().map(|c| c.parent).collect();
        assert_eq!(parents, [None, Some(0), Some(0), None]);
        let roots: Vec<_> = run.roots().map(|c| c.component.as_str()).collect();
        assert_eq!(roots, ["flow", "c"]);
        assert_eq!(run.calls[3].start_us, 500, "offset by when the call began");
        assert_eq!(run.calls[2].start_us, 20);
    }
}
