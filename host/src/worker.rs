//! A worker of the shared tier ([`Host::serve`], `cairn worker`): takes the
//! calls other hosts dispatched from the work queue, runs each through this
//! host's call path (same sandbox, same limits), publishes the result and
//! acknowledges. The queue's mechanics are the client's
//! (`remote/work.rs`); what a work item means is decided here.
//!
//! Layer: the host façade (it adds to [`Host`]).

use crate::digest::Digest;
use crate::entry::ClosureNode;
use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;
use crate::remote::work::{self, WorkItem};
use crate::remote::WorkerOptions;
use crate::report::{CacheMode, CallOptions};
use crate::tier::shared::SharedTier;
use crate::types::Type;
use crate::value::Value;

impl Host {
    /// Runs as a worker of the connected shared tier: pulls calls that
    /// hosts dispatched, executes them in this host's sandbox and limits,
    /// publishes their results and acknowledges them. Returns after
    /// [`WorkerOptions::max_calls`] calls, or never.
    ///
    /// # Errors
    /// [`ErrorKind::Remote`] if the host is not connected or the work queue
    /// cannot be joined. A call that fails is reported to its sender, not here.
    pub fn serve(&self, opts: &WorkerOptions) -> Result<()> {
        let shared = self.shared("a worker")?;
        work::serve(shared.remote(), opts, &|item| self.run_item(shared, item))
    }

    /// Executes `item` unless a fresh result is already published (or can
    /// be published from this worker's cache). Whether it ran.
    fn run_item(&self, shared: &SharedTier, item: &WorkItem) -> Result<bool> {
        let store = &self.calls.store;
        let fresh = |r: &crate::store::ResultRecord| {
            r.created_ms >= item.fresh_after_ms && r.expires_ms.is_none_or(|t| t > store.now_ms())
        };
        if let Some((record, _)) = store.stored_value(&item.key)? {
            // A local entry whose objects are gone cannot be published: run.
            let published = fresh(&record)
                && shared.push(&item.key).or_else(|e| match e.kind() {
                    ErrorKind::Cache => Ok(false),
                    _ => Err(e),
                })?;
            if published {
                return Ok(false);
            }
        }
        if shared.pull(&item.key, item.fresh_after_ms)? {
            return Ok(false);
        }
        let node = |c: &Digest| {
            Ok(item
                .nodes
                .iter()
                .find(|(d, _)| d == c)
                .map(|(_, n)| n.clone()))
        };
        let bytes = |n: &ClosureNode| shared.fetch(&n.component, &n.name);
        let task = self.rebuild_with(&item.closure, &node, &bytes)?;
        if task.closure != item.closure {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                "the components sent do not make the closure asked for; refusing to run them",
            ));
        }
        for (hash, len) in &item.blobs {
            if !store.has_object(hash, *len) {
                shared.fetch(hash, "an input blob")?;
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
            None => shared.fetch(&item.args_object.0, "the arguments")?.to_vec(),
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
        let (called, _) = self.calls.run(&task, &item.export, &args, &opts, false);
        if called?.key != item.key {
            return Err(Error::new(
                ErrorKind::Internal,
                "this worker computes another key for the call (a different cairn version?)",
            ));
        }
        // The shared tier has the result; this worker's own copy is
        // committed before the call is acknowledged, as a run's is before
        // it prints (a worker never ends its run).
        if let Err(e) = self.flush() {
            tracing::warn!(
                "ran `{}` but could not keep it in this worker's cache: {e}",
                item.export
            );
        }
        Ok(true)
    }
}
