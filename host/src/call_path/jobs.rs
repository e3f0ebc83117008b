//! Scheduling: how many tasks execute at once, and the threads a flow's
//! concurrent calls run on.
//!
//! A call a flow starts through an `async` import runs on a thread of its
//! own: its lookup, its single-flight wait, its dispatch to a worker and, for
//! a sub-flow, the calls it makes in turn. Only executing a task takes one of
//! the host's [`Jobs`]; a flow waiting for its calls holds none, so nested
//! flows cannot starve the tasks they wait for.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::Duration;

use futures::channel::oneshot;

use crate::error::{Error, Result};
use crate::sandbox::jobs_or_cores;

/// The stack of a thread running a flow's call: as much as the main
/// thread's, since a task's wasm runs on it (reserved, not committed).
const STACK: usize = 8 << 20;

/// A counting semaphore of the tasks that may execute at once.
pub(crate) struct Jobs {
    state: Mutex<Free>,
    freed: Condvar,
}

struct Free {
    jobs: usize,
    /// Threads waiting for one: a job given back wakes one only if there
    /// is one (a wake is a system call even with nobody waiting).
    waiting: usize,
}

impl Jobs {
    /// `jobs` tasks at once; 0 means one per core.
    pub(crate) fn new(jobs: usize) -> Jobs {
        Jobs {
            state: Mutex::new(Free {
                jobs: jobs_or_cores(jobs),
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free job; it is free again when the returned guard drops.
    pub(crate) fn take(&self) -> Job<'_> {
        let mut free = self.state.lock().expect("poisoned");
        while free.jobs == 0 {
            free.waiting += 1;
            free = self.freed.wait(free).expect("poisoned");
            free.waiting -= 1;
        }
        free.jobs -= 1;
        Job(self)
    }
}

/// One job taken from [`Jobs`], given back on drop.
pub(crate) struct Job<'a>(&'a Jobs);

impl Drop for Job<'_> {
    fn drop(&mut self) {
        let mut free = self.0.state.lock().expect("poisoned");
        free.jobs += 1;
        if free.waiting > 0 {
            self.0.freed.notify_one();
        }
    }
}

/// What `f` returns, computed on a thread of its own: a flow's call started
/// through an `async` import, or an embedder's call. Dropping the future
/// (the flow failed) lets the call finish and store its result; nobody
/// waits for it.
pub(crate) fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Answer<Result<T>> {
    THREADS.answer(f)
}

/// The threads calls that may wait run on (a flow waits for its own calls,
/// a dispatched call for a worker): one per call in progress, however many,
/// so that none is queued behind a call that waits for it.
static THREADS: LazyLock<Arc<Threads>> = LazyLock::new(|| Threads::new(usize::MAX));

/// How long an idle thread waits for more work before it ends.
const KEEP_IDLE: Duration = Duration::from_secs(10);

type Work = Box<dyn FnOnce() + Send>;

/// Threads kept for a while when idle, so that a flow making many calls
/// does not pay a thread's creation (and wasmtime's per-thread set-up) for
/// each; at most `max` at once, the rest of the work queued.
pub(crate) struct Threads {
    max: usize,
    state: Mutex<Idle>,
    ready: Condvar,
}

struct Idle {
    /// Work not taken yet.
    work: VecDeque<Work>,
    /// Threads waiting for work.
    idle: usize,
    /// Threads alive.
    live: usize,
}

impl Threads {
    /// At most `max` threads.
    pub(crate) fn new(max: usize) -> Arc<Threads> {
        Arc::new(Threads {
            max: max.max(1),
            state: Mutex::new(Idle {
                work: VecDeque::new(),
                idle: 0,
                live: 0,
            }),
            ready: Condvar::new(),
        })
    }

    /// What `f` returns, computed on one of these threads.
    pub(crate) fn answer<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Answer<Result<T>> {
        let (tx, rx) = oneshot::channel();
        let started = self.run(Box::new(move || {
            let _ = tx.send(f());
        }));
        Box::pin(async move {
            started
                .map_err(|e| Error::internal(format!("cannot start a thread for a call: {e}")))?;
            rx.await
                .unwrap_or_else(|_| Err(Error::internal("a call's thread ended without an answer")))
        })
    }

    /// Runs `work` on an idle thread, a new one while under `max`, or queues
    /// it for the next free one.
    fn run(self: &Arc<Self>, work: Work) -> std::io::Result<()> {
        let mut state = self.state.lock().expect("poisoned");
        state.work.push_back(work);
        if state.idle >= state.work.len() || state.live >= self.max {
            if state.idle > 0 {
                self.ready.notify_one();
            }
            return Ok(());
        }
        state.live += 1;
        drop(state);
        let threads = self.clone();
        let spawned = std::thread::Builder::new()
            .name("cairn-call".into())
            .stack_size(STACK)
            .spawn(move || threads.serve());
        if spawned.is_err() {
            // Nobody will take it: the caller is told, the work dropped.
            let mut state = self.state.lock().expect("poisoned");
            state.live -= 1;
            state.work.pop_back();
        }
        spawned.map(drop)
    }

    /// Takes work until none comes for [`KEEP_IDLE`].
    fn serve(&self) {
        // Counted out however the thread ends (a call that panicked too),
        // so that a bounded set never shrinks for good.
        struct Leave<'a>(&'a Threads);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                state.live -= 1;
            }
        }
        let _leave = Leave(self);
        let mut state = self.state.lock().expect("poisoned");
        loop {
            if let Some(work) = state.work.pop_front() {
                drop(state);
                work();
                state = self.state.lock().expect("poisoned");
                continue;
            }
            state.idle += 1;
            let (next, waited) = self.ready.wait_timeout(state, KEEP_IDLE).expect("poisoned");
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.work.is_empty() {
                return;
            }
        }
    }
}

/// A future answering `T`, sent between threads.
pub(crate) type Answer<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Hands a flow the answers of its concurrent calls in the order it made
/// them, whatever order they finish in. A flow's code then sees the same
/// sequence of events on every run, so what it does next — and returns, and
/// what is cached — cannot depend on which call ran faster. The calls still
/// run at once; a call that finishes early waits only to be handed over.
#[derive(Default)]
pub(crate) struct InOrder {
    /// When the last call made so far has been handed over.
    last: Mutex<Option<oneshot::Receiver<()>>>,
}

impl InOrder {
    /// `answer`, handed over only after every answer made before it.
    pub(crate) fn next<T: Send + 'static>(&self, answer: Answer<T>) -> Answer<T> {
        let (handed, now) = oneshot::channel::<()>();
        let before = self.last.lock().expect("poisoned").replace(now);
        Box::pin(async move {
            let out = answer.await;
            if let Some(before) = before {
                // Cancelled means the flow dropped that call: nothing to wait for.
                let _ = before.await;
            }
            let _ = handed.send(());
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::{spawn, Answer, Jobs, Threads};
    use crate::error::Result;

    /// Starts 16 calls with `start`, each counting how many run at once;
    /// checks that every one answered, in order, and returns the most seen.
    fn most_at_once(
        start: impl Fn(Box<dyn FnOnce() -> usize + Send>) -> Answer<Result<usize>>,
    ) -> usize {
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pending: Vec<_> = (0..16)
            .map(|i| {
                let (now, most) = (now.clone(), most.clone());
                start(Box::new(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::yield_now();
                    now.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        let got: Vec<usize> = pending
            .into_iter()
            .map(|p| pollster::block_on(p).unwrap())
            .collect();
        assert_eq!(got, (0..16).collect::<Vec<_>>());
        most.load(Ordering::SeqCst)
    }

    /// However many threads ask, no more than `jobs` hold a job at once.
    #[test]
    fn jobs_bound_how_many_run_at_once() {
        let jobs = Arc::new(Jobs::new(2));
        let most = most_at_once(|count| {
            let jobs = jobs.clone();
            spawn(move || {
                let _job = jobs.take();
                Ok(count())
            })
        });
        assert!(most <= 2, "{most}");
    }

    /// A bounded set of threads runs all its work, at most `max` at once.
    #[test]
    fn bounded_threads_run_everything_at_most_max_at_once() {
        let threads = Threads::new(3);
        let most = most_at_once(|count| threads.answer(move || Ok(count())));
        assert!(most <= 3, "{most}");
        assert!(threads.state.lock().unwrap().live <= 3);
    }
}
