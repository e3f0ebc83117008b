//! What a call is asked to do and what it reports: [`CallOptions`] in,
//! [`Outcome`] and [`Report`] out, one [`CallRecord`] per call made.
//!
//! Plain data, in the bottom layer: it imports only other bottom-layer
//! modules (values, digests, grants, explanations).

use std::sync::Arc;
use std::time::Duration;

use crate::digest::Digest;
use crate::entry::Explanation;
use crate::sandbox::Grants;
use crate::value::Value;

/// How a call uses the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// Answer from the cache on a hit; run and store on a miss. The default.
    #[default]
    Use,
    /// Run even if a result is stored, and replace it.
    Refresh,
    /// Run without reading or writing the cache.
    Off,
}

/// Told about each call of a run as it starts and finishes: for progress
/// displays and live logs. Called on the thread making the call.
pub trait Observer: Send + Sync {
    /// A call started (`depth` 0 is the call asked for).
    fn call_started(&self, component: &str, export: &str, depth: u32) {
        let _ = (component, export, depth);
    }

    /// A call finished (hit or executed; a failed call is not reported).
    fn call_finished(&self, call: &CallRecord) {
        let _ = call;
    }
}

/// Options of one call. `CallOptions::default()` uses the cache.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// How the call uses the cache.
    pub cache: CacheMode,
    /// On a hit, also load what the producing run wrote to stdout and stderr
    /// (kept with every stored result). Off by default: it costs reads.
    pub replay_output: bool,
    /// Capabilities granted to the called task (not to the tasks a flow
    /// calls). None by default; each is part of the key.
    pub grants: Grants,
    /// Treat stored results older than this as expired, at every depth (a
    /// task's own `ttl` applies too, whichever is shorter).
    pub ttl: Option<Duration>,
    /// For each call that misses, find the nearest earlier entry for the
    /// same export and say what differs ([`CallRecord::explanation`]).
    pub explain: bool,
    /// Record the run in the cache's history (`cairn runs`, `cairn graph`).
    /// Off by default for library calls: an app making thousands of calls a
    /// second would fill the history with them.
    pub record_run: bool,
    /// Told about each call as it starts and finishes.
    pub observer: Option<Arc<dyn Observer>>,
    /// With a shared tier (`Host::connect`, feature `remote`): send task
    /// calls that miss to the workers (`Host::serve`) instead of executing
    /// them here. Flows
    /// still run here (their calls are dispatched), as do calls with grants.
    pub dispatch: bool,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("cache", &self.cache)
            .field("replay_output", &self.replay_output)
            .field("grants", &self.grants)
            .field("ttl", &self.ttl)
            .field("explain", &self.explain)
            .field("record_run", &self.record_run)
            .field("observer", &self.observer.is_some())
            .field("dispatch", &self.dispatch)
            .finish()
    }
}

/// Whether a call was answered from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Answered from the cache: nothing was compiled, instantiated or read.
    Hit,
    /// Executed: no result was stored.
    Miss,
    /// Executed: a result was stored but had outlived its time to live.
    Expired,
    /// Executed and not stored: the call (or a call it made) was impure or
    /// had a writable directory.
    Uncacheable,
}

impl CacheStatus {
    /// `"hit"`, `"miss"`, `"expired"` or `"uncacheable"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Expired => "expired",
            CacheStatus::Uncacheable => "uncacheable",
        }
    }
}

/// What happened during a call.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Report {
    /// Hit or miss.
    pub cache: CacheStatus,
    /// The call's key.
    pub key: Digest,
    /// Component instances started by this call and the calls it made (0 on a hit).
    pub executed: u32,
    /// Calls answered from the cache, at any depth (1 on a hit).
    pub hits: u32,
    /// Whether the result was written to the cache.
    pub stored: bool,
    /// Wall time of the whole call.
    pub elapsed: Duration,
    /// Execution time: of this run on a miss, of the run that produced the
    /// result on a hit (the time the hit saved).
    pub run: Duration,
    /// Every call made in this run, the called one first, each followed by
    /// the calls it made, in the order it made them: a flow's calls into its
    /// tasks, and theirs. The order is the same whatever ran first when a
    /// flow's calls run concurrently.
    pub calls: Vec<CallRecord>,
}

/// One call made during a run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallRecord {
    /// The called task's name.
    pub component: String,
    /// The export path.
    pub export: String,
    /// The call's key.
    pub key: Digest,
    /// Hit or miss.
    pub cache: CacheStatus,
    /// When the call started, since the run started: with `elapsed`, shows
    /// which of a flow's calls overlapped.
    pub start: Duration,
    /// Wall time of the call, including the calls it made.
    pub elapsed: Duration,
    /// Execution time: of this call on a miss; of the run that produced the
    /// result on a hit (what the hit saved).
    pub run: Duration,
    /// 0 for the called task, 1 for the calls it made, and so on.
    pub depth: u32,
    /// What the task wrote to stdout: on a miss, this run's; on a hit, the
    /// producing run's if [`CallOptions::replay_output`] was set.
    pub stdout: Vec<u8>,
    /// What the task wrote to stderr, likewise.
    pub stderr: Vec<u8>,
    /// Why it missed, when [`CallOptions::explain`] was set.
    pub explanation: Option<Explanation>,
    /// A hit answered by the shared tier (and copied into the local cache).
    pub remote: bool,
    /// The worker that executed it, when it was dispatched.
    pub worker: Option<String>,
    /// When its result expires (ms since the epoch).
    pub(crate) expires_ms: Option<u64>,
}

impl CallRecord {
    /// The record of a call that just started.
    pub(crate) fn started(
        component: String,
        export: String,
        key: Digest,
        depth: u32,
        start: Duration,
    ) -> Self {
        CallRecord {
            component,
            export,
            key,
            cache: CacheStatus::Miss,
            start,
            elapsed: Duration::ZERO,
            run: Duration::ZERO,
            depth,
            stdout: Vec::new(),
            stderr: Vec::new(),
            explanation: None,
            remote: false,
            worker: None,
            expires_ms: None,
        }
    }
}

/// A call's result and report.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The returned value, or `None` for a function without a result.
    pub value: Option<Value>,
    /// What happened.
    pub report: Report,
}
