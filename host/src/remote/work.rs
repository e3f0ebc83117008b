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
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{tier, Remote, WORKERS, WORK_SUBJECT};
use crate::digest::Digest;
use crate::entry::ClosureNode;
use crate::error::{Error, ErrorKind, Result};
use crate::flow::{self, Inner, Scope};
use crate::host::{CacheMode, CallOptions, Host};
use crate::task::Task;
use crate::types::Type;
use crate::value::Value;

/// Arguments encoded in more bytes than this travel as an object.
const ARGS_INLINE_MAX: usize = 64 * 1024;
/// A call whose worker loses the server this many times is given up.
const MAX_DELIVERIES: i64 = 5;

/// One call for a worker.
#[derive(Serialize, Deserialize)]
struct WorkItem {
    /// The call's key, as the sender computed it.
    key: Digest,
    /// The called task's closure, and every node of it.
    closure: Digest,
    nodes: Vec<(Digest, ClosureNode)>,
    /// The export path.
    export: String,
    /// The arguments' canonical encoding, in hex when small.
    args: Option<String>,
    /// The object holding the arguments' encoding (in the object store
    /// when `args` is `None`).
    args_object: (Digest, u64),
    /// Results made before this (ms since the epoch) are stale: the sender
    /// asked for `--refresh` or a maximum age.
    fresh_after_ms: u64,
    /// Blobs among the arguments (in the object store).
    blobs: Vec<(Digest, u64)>,
    /// Where to send the [`Reply`].
    reply: String,
    /// Who sent it.
    from: String,
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
}

impl WorkerOptions {
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
        }
    }
}

/// A call to send to the workers.
pub(crate) struct Call<'a> {
    pub(crate) task: &'a Task,
    pub(crate) export: &'a str,
    pub(crate) key: &'a Digest,
    pub(crate) args: &'a [Value],
    /// The arguments' canonical encoding.
    pub(crate) encoded: &'a [u8],
    /// Results made before this are stale.
    pub(crate) fresh_after_ms: u64,
}

/// Sends `call` to the workers and waits until one has published its
/// result, which is then copied into the local cache. Returns the worker's
/// name; `None` when the shared tier is unavailable (optional), so the
/// caller runs it here.
pub(crate) fn dispatch(inner: &Inner, remote: &Remote, call: &Call<'_>) -> Result<Option<String>> {
    let Call {
        task,
        export,
        key,
        args,
        encoded,
        fresh_after_ms,
    } = *call;
    let mut tree = Vec::new();
    flow::closure_nodes(task, &mut tree);
    for (_, node, t) in &tree {
        remote.ensure_object(&node.component, || Ok(t.bytes()?.to_vec()))?;
    }
    let mut blobs = Vec::new();
    let mut failed = None;
    for v in args {
        v.for_each_blob(&mut |b| {
            if failed.is_some() || blobs.contains(&(b.hash(), b.len())) {
                return;
            }
            blobs.push((b.hash(), b.len()));
            let read = || {
                let bytes = crate::engine::BlobReader::open(inner, b)?;
                bytes
                    .read(0, bytes.len())
                    .map(|b| b.to_vec())
                    .map_err(|e| Error::io(format_args!("cannot read blob {}", b.hash()), e))
            };
            if let Err(e) = remote.ensure_object(&b.hash(), read) {
                failed = Some(e);
            }
        });
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let args_object = (Digest::of(encoded), encoded.len() as u64);
    let inline = encoded.len() <= ARGS_INLINE_MAX;
    if !inline {
        remote.ensure_object(&args_object.0, || Ok(encoded.to_vec()))?;
    }
    let reply = remote.client.new_inbox();
    let item = WorkItem {
        key: *key,
        closure: task.closure,
        nodes: tree.into_iter().map(|(d, n, _)| (d, n)).collect(),
        export: export.to_string(),
        args: inline.then(|| hex::encode(encoded)),
        args_object,
        fresh_after_ms,
        blobs,
        reply: reply.clone(),
        from: remote.id.clone(),
    };
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
            Err(_) if tier::pull(&inner.store, remote, key, fresh_after_ms)? => {
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
                        "no worker finished {} `{export}` within {}; start one with `cairn worker --remote {}`",
                        task.name,
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
    if !tier::pull(&inner.store, remote, key, fresh_after_ms)? {
        return Err(Error::new(
            ErrorKind::Remote,
            format!(
                "worker {} ran {} `{export}` but its result is not in the shared tier; run again",
                reply.worker, task.name
            ),
        ));
    }
    Ok(Some(reply.worker))
}

/// Pulls calls from the work queue and runs them until `opts.max_calls`
/// are done (or forever). Failures of a call are reported to its sender;
/// losing the server is retried.
pub(crate) fn serve(host: &Host, remote: &Remote, opts: &WorkerOptions) -> Result<()> {
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
    let jobs = match opts.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
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
                            handle(host, remote, opts, msg);
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
fn handle(host: &Host, remote: &Remote, opts: &WorkerOptions, msg: jetstream::Message) {
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
    eprintln!(
        "{}: running {task} `{}` ({}) for {}",
        opts.name,
        item.export,
        item.key.short(),
        item.from
    );
    let outcome = run_item(host, remote, &item);
    let delivered = msg.info().map_or(1, |i| i.delivered);
    let error = match outcome {
        Ok(ran) => {
            eprintln!(
                "{}: {} {} `{}` in {:.1} ms",
                opts.name,
                if ran { "ran" } else { "answered" },
                item.key.short(),
                item.export,
                start.elapsed().as_secs_f64() * 1e3
            );
            None
        }
        Err(e) if e.kind() == ErrorKind::Remote && delivered < MAX_DELIVERIES => {
            // Not the call's fault: leave it to be redelivered.
            eprintln!("{}: {e}", opts.name);
            return;
        }
        Err(e) if e.kind() == ErrorKind::Remote => {
            eprintln!(
                "{}: giving up {} after {delivered} deliveries: {e}",
                opts.name,
                item.key.short()
            );
            Some(format!("given up after {delivered} deliveries: {e}"))
        }
        Err(e) => {
            eprintln!("{}: {} failed: {e}", opts.name, item.key.short());
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

/// Executes `item` unless a fresh result is already published (or can be
/// published from this worker's cache). Whether it ran.
fn run_item(host: &Host, remote: &Remote, item: &WorkItem) -> Result<bool> {
    let inner = &host.inner;
    let store = &inner.store;
    let fresh = |r: &crate::store::ResultRecord| {
        r.created_ms >= item.fresh_after_ms
            && r.expires_ms.is_none_or(|t| t > crate::store::now_ms())
    };
    if let Some((record, _)) = store.stored_value(&item.key)? {
        // A local entry whose objects are gone cannot be published: run.
        let published = fresh(&record)
            && tier::push(store, remote, &item.key).or_else(|e| match e.kind() {
                ErrorKind::Cache => Ok(false),
                _ => Err(e),
            })?;
        if published {
            return Ok(false);
        }
    }
    if tier::pull(store, remote, &item.key, item.fresh_after_ms)? {
        return Ok(false);
    }
    let node = |c: &Digest| {
        Ok(item
            .nodes
            .iter()
            .find(|(d, _)| d == c)
            .map(|(_, n)| n.clone()))
    };
    let bytes = |n: &ClosureNode| fetch(inner, remote, &n.component, &n.name);
    let task = host.rebuild_with(&item.closure, &node, &bytes)?;
    if task.closure != item.closure {
        return Err(Error::new(
            ErrorKind::InvalidComponent,
            "the components sent do not make the closure asked for; refusing to run them",
        ));
    }
    for (hash, len) in &item.blobs {
        if !store.has_object(hash, *len) {
            fetch(inner, remote, hash, "an input blob")?;
        }
    }
    let (_, ty) = task.resolve(&item.export)?;
    let params = Type::Tuple(ty.params.iter().map(|(_, t)| t.clone()).collect());
    let encoded = match &item.args {
        Some(hex) => hex::decode(hex).map_err(|_| {
            Error::new(
                ErrorKind::BadArguments,
                "a work item's arguments are not hex",
            )
        })?,
        None => fetch(inner, remote, &item.args_object.0, "the arguments")?.to_vec(),
    };
    if Digest::of(&encoded) != item.args_object.0 {
        return Err(Error::new(
            ErrorKind::BadArguments,
            "a work item's arguments do not match their hash",
        ));
    }
    let Ok(Value::Tuple(args)) = crate::codec::from_bytes(&encoded, &params) else {
        return Err(Error::new(
            ErrorKind::BadArguments,
            "a work item's arguments do not decode",
        ));
    };
    // Anything this worker's cache holds for the key was not good enough.
    let opts = CallOptions {
        cache: CacheMode::Refresh,
        ..CallOptions::default()
    };
    let scope = Scope::worker(Arc::clone(inner), opts);
    let called = flow::call(&scope, &task, &item.export, &args)?;
    if called.key != item.key {
        return Err(Error::new(
            ErrorKind::Internal,
            "this worker computes another key for the call (a different cairn version?)",
        ));
    }
    Ok(true)
}

/// Object `hash` from the local cache or the shared tier (verified), kept
/// locally; `what` names it in the error when it is nowhere.
fn fetch(inner: &Inner, remote: &Remote, hash: &Digest, what: &str) -> Result<Arc<[u8]>> {
    if let Some(b) = inner.store.object_any(hash)? {
        return Ok(b.into());
    }
    let bytes = remote.object(hash)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Remote,
            format!("{what} ({}) is not in the shared tier", hash.short()),
        )
    })?;
    inner.store.put_object(&bytes)?;
    Ok(bytes.into())
}
