//! The shared tier beyond one machine, on NATS JetStream: a key-value bucket
//! of results (call key → record), an object store of content-addressed
//! values, blobs and components, a key-value bucket of claims (one machine
//! executes a missing key, the others wait for it), and a work-queue stream
//! that [`crate::Host::serve`] workers pull calls from.
//!
//! This module is the client: buckets, objects, claims and the work queue.
//! What the cache does with them — look up, copy in, publish, wait for a
//! claim's holder — is the shared tier's (`tier/shared.rs`); running work
//! items is the worker's (`worker.rs`).
//!
//! The host's call path is synchronous; the NATS client is not. A [`Remote`]
//! blocks on a tokio runtime: the embedder's, when it connects with
//! `Host::connect_async` (the call path then runs on threads of its own,
//! never the runtime's), else a small one of its own. Every operation is bounded by a timeout.
//!
//! Layer: a store, beside the local one. Imports only the bottom layer.

mod claim;
pub(crate) mod record;
pub(crate) mod work;

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use tokio::io::AsyncReadExt;

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

pub use work::WorkerOptions;

/// The key-value bucket of results: call key (hex) → record.
const RESULTS: &str = "cairn_results";
/// The key-value bucket of claims: call key (hex) → who is executing it.
const CLAIMS: &str = "cairn_claims";
/// The object store of values, blobs and components, by blake3 hash (hex).
const OBJECTS: &str = "cairn_objects";
/// The work-queue stream workers pull calls from, and its subject.
const WORK: &str = "cairn_work";
const WORK_SUBJECT: &str = "cairn.work";
/// The durable consumer every worker shares.
const WORKERS: &str = "cairn_workers";

/// How to reach the shared tier, and how to behave when it cannot be reached.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RemoteConfig {
    /// The NATS server(s): `nats://HOST:PORT`, `tls://HOST:PORT`, or several
    /// separated by commas.
    pub url: String,
    /// Go on with the local cache only (with a warning) when the server
    /// cannot be reached, at start or later, instead of failing.
    pub optional: bool,
    /// A NATS credentials file (JWT and nkey seed), as `nsc` writes them.
    pub creds: Option<PathBuf>,
    /// A file holding an nkey seed (`SU…`).
    pub nkey: Option<PathBuf>,
    /// A token to authenticate with.
    pub token: Option<String>,
    /// A CA certificate (PEM) to verify the server's TLS certificate with;
    /// giving one requires TLS.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key (PEM) for mutual TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// How long to wait for a result another machine (or a worker) is
    /// computing before computing it here.
    pub wait: Duration,
    /// How long a claim outlives its holder: a machine that dies while
    /// executing a key blocks others for at most this long. Used when the
    /// claims bucket is created.
    pub claim_ttl: Duration,
    /// How long a worker may go silent before its call is given to another.
    /// Used when the work queue's consumer is created.
    pub ack_wait: Duration,
    /// Bound on each request to the server.
    pub timeout: Duration,
}

impl RemoteConfig {
    /// The defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> RemoteConfig {
        RemoteConfig {
            url: url.into(),
            optional: false,
            creds: None,
            nkey: None,
            token: None,
            tls_ca: None,
            tls_client: None,
            wait: Duration::from_secs(3600),
            claim_ttl: Duration::from_secs(30),
            ack_wait: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The runtime the NATS client runs on.
pub(crate) enum Rt {
    /// Connected with `Host::connect`: one thread of its own.
    Own(tokio::runtime::Runtime),
    /// Connected with `Host::connect_async`: the embedder's runtime.
    Borrowed(tokio::runtime::Handle),
}

impl Rt {
    /// `runtime` (the embedder's, given by `Host::connect_async`), else a
    /// new one.
    fn new(runtime: Option<tokio::runtime::Handle>) -> Result<Rt> {
        if let Some(handle) = runtime {
            return Ok(Rt::Borrowed(handle));
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cairn-nats")
            .enable_all()
            .build()
            .map(Rt::Own)
            .map_err(|e| Error::internal(format!("cannot start the NATS client: {e}")))
    }

    /// Runs `fut` to completion, blocking this thread (never one of the
    /// runtime's own).
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self {
            Rt::Own(rt) => rt.block_on(fut),
            Rt::Borrowed(handle) => handle.block_on(fut),
        }
    }

    /// A handle to the runtime.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            Rt::Own(rt) => rt.handle(),
            Rt::Borrowed(handle) => handle,
        }
    }

    /// Runs `fut` in the background.
    pub(crate) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(fut)
    }
}

/// A connection to the shared tier.
pub(crate) struct Remote {
    rt: Rt,
    client: async_nats::Client,
    js: jetstream::Context,
    results: kv::Store,
    claims: kv::Store,
    objects: object_store::ObjectStore,
    cfg: RemoteConfig,
    /// Set when the server was lost and `optional` allows going on locally.
    down: AtomicBool,
    /// Objects known to be in the object store.
    present: Mutex<HashSet<Digest>>,
    /// Who this host is, in claims and work items.
    id: String,
}

impl Remote {
    /// Connects, creating the buckets and the stream if they are missing.
    /// `Ok(None)` when the server cannot be reached and `cfg.optional` says
    /// to go on without it.
    pub(crate) fn connect(
        cfg: RemoteConfig,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<Option<Remote>> {
        let rt = Rt::new(runtime)?;
        let connected = rt.block_on(async {
            let client = options(&cfg).await?.connect(cfg.url.as_str()).await?;
            let mut js = jetstream::new(client.clone());
            js.set_timeout(cfg.timeout);
            let (results, claims, objects) = buckets(&js, &cfg).await?;
            Ok::<_, async_nats::Error>((client, js, results, claims, objects))
        });
        let (client, js, results, claims, objects) = match connected {
            Ok(c) => c,
            Err(e) if cfg.optional => {
                eprintln!(
                    "warning: cannot reach NATS at {} ({e}); going on with the local cache only",
                    cfg.url
                );
                return Ok(None);
            }
            Err(e) => return Err(unreachable(&cfg.url, "connecting", &e)),
        };
        let id = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            &Digest::of(&rand::random::<[u8; 16]>()).to_hex()[..8]
        );
        Ok(Some(Remote {
            rt,
            client,
            js,
            results,
            claims,
            objects,
            cfg,
            down: AtomicBool::new(false),
            present: Mutex::default(),
            id,
        }))
    }

    /// How this connection was configured.
    pub(crate) fn config(&self) -> &RemoteConfig {
        &self.cfg
    }

    /// Whether the server was lost and the host goes on locally.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Stops using the server for the rest of this host's life, as if it
    /// were optional and lost: after a failed publish the result is kept
    /// locally and the run goes on without the tier.
    pub(crate) fn give_up(&self) {
        self.down.store(true, Ordering::Relaxed);
    }

    /// Runs `fut` on the client's runtime, bounded by the request timeout.
    /// `Ok(None)` when the tier is down (or goes down now) and optional.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<Option<T>> {
        self.run_for(what, self.cfg.timeout, fut)
    }

    fn run_for<T, E: std::fmt::Display>(
        &self,
        what: &str,
        limit: Duration,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<Option<T>> {
        if self.is_down() {
            return Ok(None);
        }
        let out = self.rt.block_on(async {
            match tokio::time::timeout(limit, fut).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {}",
                    humantime::format_duration(limit)
                )),
            }
        });
        match out {
            Ok(v) => Ok(Some(v)),
            Err(e) => self.lost(what, e).map(|()| None),
        }
    }

    /// The server failed during `what`: an error, or (optional) a warning
    /// and local-only operation from now on.
    fn lost(&self, what: &str, e: impl std::fmt::Display) -> Result<()> {
        if !self.cfg.optional {
            return Err(unreachable(&self.cfg.url, what, &e));
        }
        if !self.down.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: NATS at {} failed while {what} ({e}); going on with the local cache only",
                self.cfg.url
            );
        }
        Ok(())
    }

    /// The record stored under `key` in the shared tier, if any.
    pub(crate) fn result(&self, key: &Digest) -> Result<Option<Vec<u8>>> {
        let got = self.run("reading a result", self.results.get(key.to_hex()))?;
        Ok(got.flatten().map(|b| b.to_vec()))
    }

    /// Publishes the record of `key`.
    pub(crate) fn put_result(&self, key: &Digest, record: Vec<u8>) -> Result<()> {
        self.run(
            "publishing a result",
            self.results.put(key.to_hex(), record.into()),
        )?;
        Ok(())
    }

    /// Object `hash` from the object store, verified; `None` if it is not
    /// there (or is damaged there).
    pub(crate) fn object(&self, hash: &Digest) -> Result<Option<Vec<u8>>> {
        let fetch = async {
            let mut object = match self.objects.get(hash.to_hex()).await {
                Ok(o) => o,
                Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let mut bytes = Vec::with_capacity(object.info().size);
            object
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Some(bytes))
        };
        let limit = self.cfg.timeout.max(Duration::from_secs(60));
        let Some(bytes) = self.run_for("fetching an object", limit, fetch)?.flatten() else {
            return Ok(None);
        };
        if Digest::of(&bytes) != *hash {
            // Removed, so that lookups stop counting on it and the next
            // result that holds it uploads it again.
            tracing::warn!(%hash, "object in the shared tier does not match its hash; removing it");
            self.present.lock().expect("poisoned").remove(hash);
            self.run(
                "removing a damaged object",
                self.objects.delete(hash.to_hex()),
            )?;
            return Ok(None);
        }
        self.present.lock().expect("poisoned").insert(*hash);
        Ok(Some(bytes))
    }

    /// Whether the object store holds object `hash` (of `len` bytes, if
    /// given). Its content is verified when it is fetched, not here. `None`
    /// if the server was lost and the host goes on without it.
    fn stored(&self, hash: &Digest, len: Option<u64>) -> Result<Option<bool>> {
        if self.is_down() {
            return Ok(None);
        }
        if self.present.lock().expect("poisoned").contains(hash) {
            return Ok(Some(true));
        }
        let name = hash.to_hex();
        let known = self.run("looking up an object", async {
            match self.objects.info(&name).await {
                Ok(info) => Ok(!info.deleted && len.is_none_or(|l| info.size as u64 == l)),
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })?;
        if known == Some(true) {
            self.present.lock().expect("poisoned").insert(*hash);
        }
        Ok(known)
    }

    /// Whether the object store holds object `hash` of `len` bytes.
    pub(crate) fn has_object(&self, hash: &Digest, len: u64) -> Result<bool> {
        Ok(self.stored(hash, Some(len))? == Some(true))
    }

    /// Makes sure the object store holds object `hash`; `bytes` gives its
    /// content (verified here) if it must be uploaded.
    pub(crate) fn ensure_object(
        &self,
        hash: &Digest,
        bytes: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<()> {
        let name = hash.to_hex();
        match self.stored(hash, None)? {
            None | Some(true) => return Ok(()),
            Some(false) => {
                let bytes = bytes()?;
                if Digest::of(&bytes) != *hash {
                    return Err(Error::new(
                        ErrorKind::Cache,
                        format!("object {hash} changed before it could be published; run again"),
                    ));
                }
                let limit = self.cfg.timeout.max(Duration::from_secs(60));
                let put = self.run_for("publishing an object", limit, async {
                    self.objects.put(name.as_str(), &mut &bytes[..]).await
                })?;
                if put.is_none() {
                    return Ok(());
                }
            }
        }
        self.present.lock().expect("poisoned").insert(*hash);
        Ok(())
    }
}

/// The connection options `cfg` asks for.
async fn options(
    cfg: &RemoteConfig,
) -> std::result::Result<async_nats::ConnectOptions, std::io::Error> {
    let mut o = async_nats::ConnectOptions::new()
        .name("cairn")
        .connection_timeout(cfg.timeout)
        .request_timeout(Some(cfg.timeout));
    if let Some(path) = &cfg.creds {
        o = o.credentials_file(path).await?;
    }
    if let Some(path) = &cfg.nkey {
        let seed = std::fs::read_to_string(path)?;
        o = o.nkey(seed.trim().to_string());
    }
    if let Some(token) = &cfg.token {
        o = o.token(token.clone());
    }
    if let Some(ca) = &cfg.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &cfg.tls_client {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}

/// The results and claims buckets and the object store, created if missing.
async fn buckets(
    js: &jetstream::Context,
    cfg: &RemoteConfig,
) -> std::result::Result<(kv::Store, kv::Store, object_store::ObjectStore), async_nats::Error> {
    let results = kv_bucket(
        js,
        RESULTS,
        "cairn: call key -> result record",
        Duration::ZERO,
    )
    .await?;
    let claims = kv_bucket(
        js,
        CLAIMS,
        "cairn: call key -> who computes it",
        cfg.claim_ttl,
    )
    .await?;
    let objects = match js.get_object_store(OBJECTS).await {
        Ok(s) => s,
        Err(_) => {
            let created = js
                .create_object_store(object_store::Config {
                    bucket: OBJECTS.into(),
                    description: Some("cairn: values, blobs and components by blake3 hash".into()),
                    ..Default::default()
                })
                .await;
            match created {
                Ok(s) => s,
                // Another host created it at the same moment.
                Err(e) => js.get_object_store(OBJECTS).await.map_err(|_| e)?,
            }
        }
    };
    ensure_stream(
        js,
        stream::Config {
            name: WORK.into(),
            subjects: vec![WORK_SUBJECT.into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        },
    )
    .await?;
    Ok((results, claims, objects))
}

/// The stream `config` names, created if missing. Two hosts connecting to a
/// new server at once both try to create it; the loser finds the winner's.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
) -> std::result::Result<(), async_nats::Error> {
    let name = config.name.clone();
    if let Err(e) = js.get_or_create_stream(config).await {
        js.get_stream(&name).await.map_err(|_| e)?;
    }
    Ok(())
}

/// Key-value bucket `name`, created if missing. Its stream is made here, as
/// the client's own `create_key_value` would make it, because that first
/// asks for account details servers before 2.10 do not give.
async fn kv_bucket(
    js: &jetstream::Context,
    name: &str,
    description: &str,
    max_age: Duration,
) -> std::result::Result<kv::Store, async_nats::Error> {
    ensure_stream(
        js,
        stream::Config {
            name: format!("KV_{name}"),
            description: Some(description.into()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_age,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        },
    )
    .await?;
    Ok(js.get_key_value(name).await?)
}

fn unreachable(url: &str, what: &str, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Remote,
        format!(
            "NATS at {url} failed while {what}: {e}; check that the server runs with JetStream \
             (nats-server -js) and the credentials (--remote-creds, --remote-nkey, --remote-token), \
             or pass --remote-optional to go on with the local cache only"
        ),
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
