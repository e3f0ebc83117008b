//! What the engine and the call path say to each other: the call path asks
//! an [`Execute`] to run a [`Call`], and gives it the [`Imports`] through
//! which the running task reaches blobs and the tasks bound to its imports.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::bytes::Bytes;
use crate::component::Export;
use crate::digest::Digest;
use crate::error::Result;
use crate::sandbox::Grants;
use crate::task::Task;
use crate::types::FuncType;
use crate::value::{Blob, Value};

/// What a running task reaches beyond its own store, provided by the call
/// path: the engine runs tasks, the call path decides where blobs and the
/// results of a flow's calls come from.
pub(crate) trait Imports: Send + Sync {
    /// The bytes of `blob`, verified against its hash where they come from
    /// the cache.
    fn open_blob(&self, blob: &Blob) -> Result<Bytes>;

    /// The task read `n` bytes of a blob (for progress displays).
    fn blob_read(&self, n: u64) {
        let _ = n;
    }

    /// A flow calling `export` of `task`, one of the tasks bound to its
    /// imports; the value it returns.
    fn call(&self, task: &Task, export: &str, args: &[Value]) -> Result<Option<Value>>;

    /// A flow calling `export` of `task` through an `async` import: the call
    /// starts now and runs alongside the flow and its other calls; its value
    /// comes when the flow awaits it.
    fn start(&self, task: &Task, export: &str, args: Vec<Value>) -> Pending;
}

/// A call a flow started and has yet to await.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Result<Option<Value>>> + Send>>;

/// Executes calls that missed. [`super::Runtime`] is the real one; the call path's
/// unit tests give their own, to exercise it without wasm.
pub(crate) trait Execute: Send + Sync {
    /// Runs `call` in a fresh sandbox.
    fn execute(&self, call: Call<'_>) -> Result<Execution>;
}

/// One call to execute.
pub(crate) struct Call<'a> {
    pub(crate) task: &'a Task,
    pub(crate) export: &'a Export,
    pub(crate) ty: &'a FuncType,
    pub(crate) args: &'a [Value],
    /// The call's key: seeds its randomness.
    pub(crate) key: &'a Digest,
    pub(crate) grants: &'a Grants,
    /// Blobs and the flow's calls.
    pub(crate) imports: Arc<dyn Imports>,
}

/// What one execution produced.
pub(crate) struct Execution {
    pub(crate) value: Option<Value>,
    pub(crate) run: Duration,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}
