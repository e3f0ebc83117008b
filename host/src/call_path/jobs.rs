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
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use futures::channel::oneshot;

use crate::error::{Error, Result};

/// The stack of a thread running a flow's call: as much as the main
/// thread's, since a task's wasm runs on it (reserved, not committed).
const STACK: usize = 8 << 20;

/// A counting semaphore of the tasks that may execute at once.
pub(crate) struct Jobs {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Jobs {
    /// `jobs` tasks at once; 0 means one per core.
    pub(crate) fn new(jobs: usize) -> Jobs {
        let jobs = match jobs {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Jobs {
            free: Mutex::new(jobs),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free job; it is free again when the returned guard drops.
    pub(crate) fn take(&self) -> Job<'_> {
        let mut free = self.free.lock().expect("poisoned");
        while *free == 0 {
            free = self.freed.wait(free).expect("poisoned");
        }
        *free -= 1;
        Job(self)
    }
}

/// One job taken from [`Jobs`], given back on drop.
pub(crate) struct Job<'a>(&'a Jobs);

impl Drop for Job<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("poisoned") += 1;
        self.0.freed.notify_one();
    }
}

/// What `f` returns, computed on a thread of its own: a flow's call started
/// through an `async` import. Dropping the future (the flow failed) lets the
/// call finish and store its result; nobody waits for it.
pub(crate) fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Answer<Result<T>> {
    let (tx, rx) = oneshot::channel();
    let started = THREADS.run(Box::new(move || {
        let _ = tx.send(f());
    }));
    Box::pin(async move {
        started.map_err(|e| Error::internal(format!("cannot start a thread for a call: {e}")))?;
        rx.await
            .unwrap_or_else(|_| Err(Error::internal("a call's thread ended without an answer")))
    })
}

/// The threads calls run on: one per call in progress, as many as there
/// are (a flow's call may wait for calls of its own, so none may queue
/// behind another), kept for a while when idle so that a flow making many
/// calls does not pay a thread's creation for each.
static THREADS: Threads = Threads {
    state: Mutex::new(Idle {
        work: VecDeque::new(),
        idle: 0,
    }),
    ready: Condvar::new(),
};

/// How long an idle thread waits for more work before it ends.
const KEEP_IDLE: Duration = Duration::from_secs(10);

type Work = Box<dyn FnOnce() + Send>;

struct Threads {
    state: Mutex<Idle>,
    ready: Condvar,
}

struct Idle {
    /// Work not taken yet: never more than the idle threads waiting for it.
    work: VecDeque<Work>,
    /// Threads waiting for work.
    idle: usize,
}

impl Threads {
    /// Runs `work` on an idle thread, or on a new one if none is free.
    fn run(&'static self, work: Work) -> std::io::Result<()> {
        let mut state = self.state.lock().expect("poisoned");
        if state.idle > state.work.len() {
            state.work.push_back(work);
            self.ready.notify_one();
            return Ok(());
        }
        drop(state);
        std::thread::Builder::new()
            .name("cairn-call".into())
            .stack_size(STACK)
            .spawn(move || {
                work();
                self.serve();
            })
            .map(drop)
    }

    /// Takes work until none comes for [`KEEP_IDLE`].
    fn serve(&'static self) {
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

    use super::{spawn, Jobs};

    /// However many threads ask, no more than `jobs` hold a job at once.
    #[test]
    fn jobs_bound_how_many_run_at_once() {
        let jobs = Arc::new(Jobs::new(2));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let pending: Vec<_> = (0..16)
            .map(|i| {
                let (jobs, now, most) = (jobs.clone(), now.clone(), most.clone());
                spawn(move || {
                    let _job = jobs.take();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::yield_now();
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(i)
                })
            })
            .collect();
        let got: Vec<_> = pending
            .into_iter()
            .map(|p| pollster::block_on(p).unwrap())
            .collect();
        assert_eq!(got, (0..16).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
