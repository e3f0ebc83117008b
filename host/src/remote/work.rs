//! Work sent to other machines: a host run with `dispatch` sends each task
//! call that misses to the work-queue stream instead of executing it, and
//! `cairn worker`s ([`crate::Host::serve`]) pull those calls, execute them in
//! the same sandbox, publish the result and acknowledge.
//!
//! A work item names everything by hash: the closure (each node's component
//! is in the object store), the arguments' canonical encoding, and the blobs
//! among them (also in the object store). A worker runs only components
//! whose bytes hash to what the item names, and computes the call's key
//! itself: it must be the key the item was sent for.
//!
//! Delivery: a worker renews its hold on an item while it runs; one that
//! dies leaves the item to be redelivered to another after
//! [`super::RemoteConfig::ack_wait`]. The result is published before the
//! item is acknowledged, and a worker first looks for a published result,
//! so a redelivered item is answered, not executed again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Remote, WORKERS, WORK_SUBJECT};
use crate::digest::Digest;
use crate::entry::ClosureNode;
use crate::error::{Error, ErrorKind, Result};

/// Arguments encoded in more bytes than this travel as an object.
pub(crate) const ARGS_INLINE_MAX: usize = 64 * 1024;
/// A call whose worker loses the server this many times is given up.
const MAX_DELIVERIES: i64 = 5;

/// One call for a worker.
#[derive(Serialize, Deserialize)]
pub(crate) struct WorkItem {
    /// The call's key, as the sender computed it.
    pub(crate) key: Digest,
    /// The called task's closure, and every node of it.
    pub(crate) closure: Digest,
    pub(crate) nodes: Vec<(Digest, ClosureNode)>,
    /// The export path.
    pub(crate) export: String,
    /// The arguments' canonical encoding, in hex when small.
    pub(crate) args: Option<String>,
    /// The object holding the arguments' encoding (in the object store
    /// when `args` is `None`).
    pub(crate) args_object: (Digest, u64),
    /// Results made before this (ms since the epoch) are stale: the sender
    /// asked for `--refresh` or a maximum age.
    pub(crate) fresh_after_ms: u64,
    /// Blobs among the arguments (in the object store).
    pub(crate) blobs: Vec<(Digest, u64)>,
    /// Where to send the [`Reply`] (filled in when sent).
    pub(crate) reply: String,
    /// Who sent it (filled in when sent).
    pub(crate) from: String,
}

/// A worker's answer: done (the result is published) or failed.
#[derive(Serialize, Deserialize)]
struct Reply {
    worker: String,
    error: Option<String>,
}

/// How a worker runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// The worker's name, reported to the hosts whose calls it runs.
    pub name: String,
    /// Calls run at once (0: one per core).
    pub jobs: usize,
    /// Stop after this many calls (for tests and benchmarks); `None` runs
    /// until the process ends.
    pub max_calls: Option<usize>,
    /// Report each call as a JSON object on stdout (`event`: `running`,
    /// `ran`, `answered`, `retry`, `failed`; `worker`, `key`, `export`, …)
    /// instead of a line of text on stderr.
    pub json: bool,
}

impl WorkerOptions {
    /// Reports an event: `text` on stderr, or `fields` (with `event` and
    /// `worker` added) as one JSON line on stdout.
    fn say(&self, event: &str, text: std::fmt::Arguments<'_>, fields: serde_json::Value) {
        if self.json {
            let mut v = fields;
            v["event"] = event.into();
            v["worker"] = self.name.clone().into();
            println!("{v}");
        } else {
            eprintln!("{}: {text}", self.name);
        }
    }

    /// The name a worker goes by unless given one: host name and process id.
    pub fn default_name() -> String {
        format!("{}-{}", super::hostname(), std::process::id())
    }

    /// A worker called `name`, one call per core, running until stopped.
    pub fn new(name: impl Into<String>) -> WorkerOptions {
        WorkerOptions {
            name: name.into(),
            jobs: 0,
            max_calls: None,
            json: false,
        }
    }
}

/// Sends `item` to the workers and waits until one has published its
/// result, which `published` then copies into the local cache (it says
/// whether it could). Returns the worker's name; `None` when the shared
/// tier is unavailable (optional), so the caller runs it here. `what`
/// names the call in messages.
pub(crate) fn dispatch(
    remote: &Remote,
    mut item: WorkItem,
    what: &str,
    published: &dyn Fn() -> Result<bool>,
) -> Result<Option<String>> {
    let export = item.export.clone();
    let reply = remote.client.new_inbox();
    item.reply = reply.clone();
    item.from = remote.id.clone();
    let payload = serde_json::to_vec(&item)
        .map_err(|e| Error::internal(format!("cannot encode a work item: {e}")))?;
    let sent = remote.run("sending a call to the workers", async {
        let replies = remote.client.subscribe(reply).await?;
        remote
            .js
            .publish(WORK_SUBJECT, payload.into())
            .await?
            .await?;
        Ok::<_, async_nats::Error>(replies)
    })?;
    let Some(mut replies) = sent else {
        return Ok(None);
    };
    // Wait for the reply; a reply can be lost (it is not persisted), so
    // look for the published result now and then too.
    let wait = remote.cfg.wait;
    let deadline = Instant::now() + wait;
    let reply: Reply = loop {
        let slice = Duration::from_secs(1);
        let answer = remote
            .rt
            .block_on(async { tokio::time::timeout(slice, replies.next()).await });
        match answer {
            Ok(Some(msg)) => {
                break serde_json::from_slice(&msg.payload).map_err(|e| {
                    Error::internal(format!("a worker's reply does not parse: {e}"))
                })?
            }
            Ok(None) => {
                remote.lost("waiting for a worker", "the connection closed")?;
                return Ok(None);
            }
            Err(_) if published()? => {
                // Published: the reply is usually on its way (a worker
                // publishes, then replies); wait a moment for its name.
                let late = remote.rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(500), replies.next()).await
                });
                let worker = late
                    .ok()
                    .flatten()
                    .and_then(|msg| serde_json::from_slice::<Reply>(&msg.payload).ok())
                    .filter(|r| r.error.is_none())
                    .map_or_else(|| "(a worker; its reply was lost)".into(), |r| r.worker);
                return Ok(Some(worker));
            }
            Err(_) if remote.is_down() => return Ok(None),
            Err(_) if Instant::now() >= deadline => {
                return Err(Error::new(
                    ErrorKind::Remote,
                    format!(
                        "no worker finished {what} `{export}` within {}; start one with `cairn worker --remote {}`",
                        humantime::format_duration(wait),
                        remote.cfg.url
                    ),
                ))
            }
            Err(_) => {}
        }
    };
    if let Some(error) = reply.error {
        return Err(Error::new(
            ErrorKind::TaskFailed,
            format!("{error} (on worker {})", reply.worker),
        ));
    }
    if !published()? {
        return Err(Error::new(
            ErrorKind::Remote,
            format!(
                "worker {} ran {what} `{export}` but its result is not in the shared tier; run again",
                reply.worker
            ),
        ));
    }
    Ok(Some(reply.worker))
}

/// Runs one work item for a worker: whether it executed it (rather than
/// answering from a result already made).
pub(crate) type Handler<'a> = dyn Fn(&WorkItem) -> Result<bool> + Sync + 'a;

/// Pulls calls from the work queue and runs each with `run` until
/// `opts.max_calls` are done (or forever). Failures of a call are reported
/// to its sender; losing the server is retried.
pub(crate) fn serve(remote: &Remote, opts: &WorkerOptions, run: &Handler<'_>) -> Result<()> {
    if remote.cfg.optional {
        return Err(Error::new(
            ErrorKind::BadArguments,
            "a worker cannot go on without its server; connect it without `optional`",
        ));
    }
    let ack_wait = remote.cfg.ack_wait;
    let consumer = remote
        .run("joining the work queue", async {
            let stream = remote.js.get_stream(super::WORK).await?;
            stream
                .get_or_create_consumer(
                    WORKERS,
                    pull::Config {
                        durable_name: Some(WORKERS.into()),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ack_wait,
                        ..Default::default()
                    },
                )
                .await
                .map_err(async_nats::Error::from)
        })?
        .ok_or_else(|| Error::new(ErrorKind::Remote, "the shared tier is unavailable"))?;
    let jobs = crate::sandbox::jobs_or_cores(opts.jobs);
    let done = AtomicUsize::new(0);
    let enough = || {
        opts.max_calls
            .is_some_and(|m| done.load(Ordering::SeqCst) >= m)
    };
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                while !enough() {
                    let next = remote.rt.block_on(async {
                        let mut batch = consumer
                            .fetch()
                            .max_messages(1)
                            .expires(Duration::from_secs(1))
                            .messages()
                            .await?;
                        batch.next().await.transpose()
                    });
                    match next {
                        Ok(Some(msg)) => {
                            if opts
                                .max_calls
                                .is_some_and(|m| done.fetch_add(1, Ordering::SeqCst) >= m)
                            {
                                // Over the limit: leave it for another worker.
                                let _ = remote.rt.block_on(msg.ack_with(AckKind::Nak(None)));
                                break;
                            }
                            handle(remote, opts, run, msg);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!("cannot fetch work: {e}; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            });
        }
    });
    Ok(())
}

/// Runs one work item: keeps its delivery alive while running, replies to
/// the sender, and acknowledges once the result is published (or the call
/// failed, which is not retried: it would fail again).
fn handle(remote: &Remote, opts: &WorkerOptions, run: &Handler<'_>, msg: jetstream::Message) {
    let start = Instant::now();
    let item: WorkItem = match serde_json::from_slice(&msg.payload) {
        Ok(item) => item,
        Err(e) => {
            eprintln!(
                "{}: dropping a work item that does not parse: {e}",
                opts.name
            );
            let _ = remote.rt.block_on(msg.ack_with(AckKind::Term));
            return;
        }
    };
    let alive = msg.clone();
    let every = remote.cfg.ack_wait / 3;
    let _keepalive = AbortOnDrop(remote.rt.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let _ = alive.ack_with(AckKind::Progress).await;
        }
    }));
    let task = item
        .nodes
        .iter()
        .find(|(c, _)| *c == item.closure)
        .map_or("?", |(_, n)| n.name.as_str());
    let key = item.key.to_hex();
    opts.say(
        "running",
        format_args!(
            "running {task} `{}` ({}) for {}",
            item.export,
            item.key.short(),
            item.from
        ),
        serde_json::json!({"task": task, "export": item.export, "key": key, "from": item.from}),
    );
    let outcome = run(&item);
    let delivered = msg.info().map_or(1, |i| i.delivered);
    let error = match outcome {
        Ok(ran) => {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let event = if ran { "ran" } else { "answered" };
            opts.say(
                event,
                format_args!(
                    "{event} {} `{}` in {ms:.1} ms",
                    item.key.short(),
                    item.export
                ),
                serde_json::json!({"key": key, "export": item.export, "ms": ms}),
            );
            None
        }
        Err(e) if e.kind() == ErrorKind::Remote && delivered < MAX_DELIVERIES => {
            // Not the call's fault: leave it to be redelivered.
            opts.say(
                "retry",
                format_args!("{e}"),
                serde_json::json!({"key": key, "error": e.to_string()}),
            );
            return;
        }
        Err(e) if e.kind() == ErrorKind::Remote => {
            opts.say(
                "failed",
                format_args!(
                    "giving up {} after {delivered} deliveries: {e}",
                    item.key.short()
                ),
                serde_json::json!({"key": key, "error": e.to_string(), "deliveries": delivered}),
            );
            Some(format!("given up after {delivered} deliveries: {e}"))
        }
        Err(e) => {
            opts.say(
                "failed",
                format_args!("{} failed: {e}", item.key.short()),
                serde_json::json!({"key": key, "error": e.to_string(), "kind": e.kind().as_str()}),
            );
            Some(e.to_string())
        }
    };
    let reply = serde_json::to_vec(&Reply {
        worker: opts.name.clone(),
        error,
    })
    .expect("a reply encodes");
    let _ = remote.rt.block_on(async {
        remote
            .client
            .publish(item.reply.clone(), reply.into())
            .await?;
        remote.client.flush().await?;
        msg.double_ack().await?;
        Ok::<_, async_nats::Error>(())
    });
}

/// Stops a task when dropped (also on a panic).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
