//! Group commit: writes that need not be durable before the caller goes on
//! (results, compiled code, component interfaces, hit counts, run records,
//! the stat cache) are queued and written by one thread, many per
//! transaction. A commit costs two fsyncs however much it writes (redb
//! commits in two phases when processes share the file), so writes wait for
//! company: until a flush (the end of a run), or [`DELAY`] after the first
//! result or statistic waiting, or [`SPARE_DELAY`] after the first write
//! that only spares work (compiled code, interfaces, the stat cache). A run
//! that stores its results within a second makes one commit however many
//! calls it executes and components it compiles; a process storing
//! thousands of results a second makes one a second. A batch of statistics
//! alone (hit counts, last-use times, finished runs: what a pure hit writes)
//! is not worth one: it is appended to the statistics log instead, and
//! reaches the index with the next commit ([`super::stats`]).
//!
//! Until its batch commits, a queued write is visible to this process
//! through [`Queue::find`]; other processes see it after the commit. A crash
//! loses the queued writes, never a committed one, and never leaves an entry
//! pointing at a missing object: object files are written and synced
//! before their entry is queued, and the directories they were renamed into
//! (each once) before the batch that names them commits. Compiled artefact
//! files are not synced: they are checked against their recorded hash when
//! loaded, and compiled again if torn.

use std::cell::Cell;
use std::collections::HashMap;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::Batch;
use super::index::Index;
use super::record::Usage;
use crate::digest::Digest;

#[derive(Default)]
struct State {
    pending: Batch,
    /// The batch being committed now, still visible to readers.
    committing: Option<Arc<Batch>>,
    /// Commits finished so far.
    commits: u64,
    /// The last commit's failure, until someone asks.
    error: Option<String>,
    stop: bool,
    /// How many wait in [`Queue::flush`]: while any do, writes go now.
    flushing: usize,
}

/// How long a result or a statistic may wait for company before it is
/// committed (statistics alone: appended to the log).
const DELAY: Duration = Duration::from_secs(1);

/// How long what only spares work (compiled code, interfaces, the stat
/// cache) may wait, unless a result or a statistic comes to take it along.
const SPARE_DELAY: Duration = Duration::from_secs(10);

/// Hit counts are gathered in this many shards, each thread using its own
/// (mostly), so that hits on several threads do not contend for one lock.
const HIT_SHARDS: usize = 16;

struct Shared {
    state: Mutex<State>,
    /// Wakes the committer: there is work, or it should stop.
    work: Condvar,
    /// Wakes those waiting for a commit to finish.
    done: Condvar,
    /// Whether anything a reader could look for (not hit counts) is queued
    /// or being committed: when not, [`Queue::find`] answers without a lock.
    visible: AtomicBool,
    /// Hits not yet moved into a batch, by shard.
    hits: [Mutex<HashMap<Digest, Usage>>; HIT_SHARDS],
    /// Whether some shard holds hits.
    hits_waiting: AtomicBool,
    /// [`DELAY`] and [`SPARE_DELAY`].
    delays: (Duration, Duration),
}

/// The queues of this process's open stores, for [`flush_all`].
static OPEN: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Commits what every open store of this process has queued, waiting at
/// most `within`: for a process about to end without dropping its stores
/// (Ctrl-C). Whether it was all done in time.
pub(crate) fn flush_all(within: Duration) -> bool {
    let open: Vec<Arc<Shared>> = (OPEN.lock().unwrap_or_else(|e| e.into_inner()).iter())
        .filter_map(Weak::upgrade)
        .collect();
    let (done, wait) = std::sync::mpsc::channel();
    let flush = move || {
        for shared in open {
            if let Err(e) = shared.flush() {
                tracing::warn!("the last results could not be written to the cache: {e}");
            }
        }
        let _ = done.send(());
    };
    std::thread::Builder::new()
        .name("cairn-flush".into())
        .spawn(flush)
        .is_ok_and(|_| wait.recv_timeout(within).is_ok())
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`Queue::flush`].
    fn flush(&self) -> Result<(), String> {
        let mut state = self.lock();
        self.drain_hits(&mut state.pending);
        let target = state.commits
            + u64::from(state.committing.is_some())
            + u64::from(!state.pending.is_empty());
        state.flushing += 1;
        self.work.notify_one();
        while state.commits < target {
            state = self.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.flushing -= 1;
        match state.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Moves the hits gathered so far into `batch`.
    fn drain_hits(&self, batch: &mut Batch) {
        self.hits_waiting.store(false, Ordering::SeqCst);
        for shard in &self.hits {
            let hits = mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            for (key, u) in hits {
                batch.add_usage(key, u);
            }
        }
    }
}

/// This thread's hit shard.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = Cell::new(NEXT.fetch_add(1, Ordering::Relaxed) % HIT_SHARDS);
    }
    SHARD.with(Cell::get)
}

/// The queue of writes and the thread that commits them.
pub(crate) struct Queue {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    pub(crate) fn start(index: Arc<Index>) -> Queue {
        Queue::start_with(index, (DELAY, SPARE_DELAY))
    }

    /// A queue that commits on a flush or at the end only (for tests that
    /// act between a write and its commit).
    #[cfg(test)]
    pub(crate) fn start_held(index: Arc<Index>) -> Queue {
        let day = Duration::from_secs(24 * 3600);
        Queue::start_with(index, (day, day))
    }

    fn start_with(index: Arc<Index>, delays: (Duration, Duration)) -> Queue {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            visible: AtomicBool::new(false),
            hits: Default::default(),
            hits_waiting: AtomicBool::new(false),
            delays,
        });
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|q| q.strong_count() > 0);
        open.push(Arc::downgrade(&shared));
        drop(open);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-commit".into())
            .spawn(move || committer(&s, &index))
            .expect("cannot start the commit thread");
        Queue {
            shared,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Adds writes to the next commit (see the module's note for when).
    pub(crate) fn push(&self, f: impl FnOnce(&mut Batch)) {
        let mut state = self.lock();
        f(&mut state.pending);
        self.shared.visible.store(true, Ordering::Release);
        drop(state);
        self.shared.work.notify_one();
    }

    /// Counts a hit of `key` at `now_ms`: written with the next commit, or
    /// within [`DELAY`]. Takes this thread's shard lock only.
    pub(crate) fn count_hit(&self, key: &Digest, now_ms: u64) {
        let mut shard = self.shared.hits[shard()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        shard.entry(*key).or_default().merge(Usage {
            hits: 1,
            last_hit_ms: now_ms,
        });
        drop(shard);
        if !self.shared.hits_waiting.load(Ordering::Relaxed) {
            self.shared.hits_waiting.store(true, Ordering::SeqCst);
        }
    }

    /// Hits of `key` not yet committed.
    pub(crate) fn pending_usage(&self, key: &Digest) -> Usage {
        let mut u = Usage::default();
        for shard in &self.shared.hits {
            if let Some(h) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
                u.merge(*h);
            }
        }
        self.visit(|b| {
            if let Some(h) = b.usage.get(key) {
                u.merge(*h);
            }
        });
        u
    }

    /// Adds writes that can wait (last-use times, runs): they go with the
    /// next commit, or within [`DELAY`]. Waking the committer for each
    /// would cost a futex call and a write to the log per few.
    pub(crate) fn push_lazy(&self, f: impl FnOnce(&mut Batch)) {
        f(&mut self.lock().pending);
    }

    /// Looks for something queued and not yet committed: the newest first.
    /// (Not hit counts: see [`Queue::pending_usage`].)
    pub(crate) fn find<T>(&self, f: impl Fn(&Batch) -> Option<T>) -> Option<T> {
        if !self.shared.visible.load(Ordering::Acquire) {
            return None;
        }
        let state = self.lock();
        f(&state.pending).or_else(|| state.committing.as_deref().and_then(f))
    }

    /// Visits everything queued and not yet committed, newest first.
    pub(crate) fn visit(&self, mut f: impl FnMut(&Batch)) {
        let state = self.lock();
        f(&state.pending);
        if let Some(b) = state.committing.as_deref() {
            f(b);
        }
    }

    /// Waits until everything queued so far is committed. Returns the error
    /// of a failed commit since the last flush, if any (its writes are lost;
    /// they were results, which are recomputed).
    pub(crate) fn flush(&self) -> Result<(), String> {
        self.shared.flush()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(e) = self.lock().error.take() {
            tracing::warn!("the last results could not be written to the cache: {e}");
        }
    }
}

fn committer(shared: &Shared, index: &Index) {
    loop {
        let batch = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            // Writes wait for company (or a flush, or the end): up to
            // DELAY after the first result or statistic, SPARE_DELAY after
            // the first write of any kind.
            let (delay, spare_delay) = shared.delays;
            let (mut first, mut first_urgent) = (None, None);
            while !state.stop && state.flushing == 0 {
                let hits = shared.hits_waiting.load(Ordering::SeqCst);
                let now = Instant::now();
                let spare = (hits || !state.pending.is_empty())
                    .then(|| *first.get_or_insert(now) + spare_delay);
                let urgent = (hits || state.pending.is_urgent())
                    .then(|| *first_urgent.get_or_insert(now) + delay);
                let wait = match [spare, urgent].into_iter().flatten().min() {
                    Some(at) if at <= now => break,
                    Some(at) => at - now,
                    // Idle: look again for hits now and then.
                    None => DELAY,
                };
                state = shared
                    .work
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            shared.drain_hits(&mut state.pending);
            if state.pending.is_empty() {
                if state.stop {
                    return;
                }
                if state.flushing > 0 {
                    // Nothing to write (a flush drains the hits itself):
                    // wait for more instead of spinning until it wakes.
                    let _ = shared
                        .work
                        .wait_timeout(state, DELAY)
                        .unwrap_or_else(|e| e.into_inner());
                }
                continue;
            }
            let batch = Arc::new(mem::take(&mut state.pending));
            state.committing = Some(batch.clone());
            batch
        };
        let result = write(index, &batch);
        let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.committing = None;
        state.commits += 1;
        shared
            .visible
            .store(!state.pending.is_lazy_only(), Ordering::Release);
        // Reported once: by the next flush, or when the queue is dropped.
        if let Err(e) = result {
            state.error = Some(e.to_string());
        }
        shared.done.notify_all();
    }
}

/// Writes `batch`: its directories synced, then one commit, or its
/// statistics alone appended to the log.
fn write(index: &Index, batch: &Batch) -> crate::error::Result<()> {
    batch
        .sync_dirs()
        .map_err(|e| crate::error::Error::io("cannot sync a cache directory", e))?;
    match batch.needs_commit() {
        true => index.writable().and_then(|()| index.commit_batch(batch)),
        false => {
            if batch.has_stats() {
                index.append_stats(batch);
            }
            Ok(())
        }
    }
}
