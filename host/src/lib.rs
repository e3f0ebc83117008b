//! cairn runs tasks written as WebAssembly components, in a sandbox, and never
//! runs the same work twice.
//!
//! A task is any component with typed WIT exports; its identity is the blake3
//! hash of its bytes. Every call is keyed by that hash, the export, its type,
//! the canonically encoded arguments and the sandbox's capabilities (see
//! [`key`]). A call whose key is stored returns the stored value at once:
//! nothing is compiled, instantiated or read. Large inputs travel as
//! [`Blob`]s, by hash, so checking a key never reads them.
//!
//! The most interesting items:
//!
//! * [`Host`]: a cache directory and an engine; [`Host::load`] a component,
//!   [`Host::call`] an export.
//! * [`Value`] and [`Type`]: store-independent values, parsed from and printed
//!   as WAVE.
//! * [`Outcome`] and [`Report`]: the value and what happened (hit or miss,
//!   key, instances started, time).
//! * [`Error`] and [`ErrorKind`]: one-line messages that say what to do.
//!
//! # Layers
//!
//! Modules are layered; each imports only from the layers below it, and no
//! two modules import each other (the `layers` integration test checks
//! both):
//!
//! ```text
//! cli        main.rs, cli/     the binary: parses arguments, prints
//!  │
//! host       host.rs (Host), cache.rs, gc.rs, manifest.rs, args.rs, worker.rs
//!  │
//! call path  call_path/        key → look up in the tiers → run on a miss →
//!  │                           store; single flight; the run's trace
//!  │
//! engine     engine/           wasmtime, the sandbox enforced, blob host
//!  │                           functions; knows nothing of caches or flows
//! tiers      tier/             get / put / claim: memory, local, shared
//!  │                           (and a scripted tier for unit tests)
//! explain    explain.rs        why a call missed
//!  │
//! stores     store/            the cache directory: redb index + objects
//!  │         remote/           the NATS JetStream client
//!  │
//! data       task, bind, provided, component, report, runs, graph, key,
//!            entry, codec, value, bytes, types, sandbox (the policy),
//!            clock, units, digest, error, wit_deps (a task's WIT for flows)
//! ```
//!
//! Cargo features: `remote` (the shared tier on NATS JetStream, with
//! tokio) and `cli` (the `cairn` binary, with clap and indicatif), both on
//! by default. An embedder that wants neither depends on the library with
//! `default-features = false`.
//!
//! # Example
//!
//! ```no_run
//! use cairn_host::{CacheStatus, Host, Value};
//!
//! # fn main() -> cairn_host::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let host = Host::open(dir.path())?;
//! let task = host.load("examples/target/wasm32-wasip2/release/hello.wasm")?;
//! for export in task.exports() {
//!     println!("{}: {}", export.path(), export.ty.as_ref().unwrap());
//! }
//! let args = [Value::String("Ada".into()), Value::Bool(true)];
//! let first = host.call(&task, "greet", &args)?;
//! let again = host.call(&task, "greet", &args)?;
//! assert_eq!(first.report.cache, CacheStatus::Miss);
//! assert_eq!(again.report.cache, CacheStatus::Hit);
//! assert_eq!(again.report.executed, 0);
//! assert_eq!(first.value, again.value);
//! # Ok(())
//! # }
//! ```

mod args;
mod bind;
mod bytes;
mod cache;
mod call_path;
pub mod clock;
pub mod codec;
mod component;
mod digest;
mod engine;
pub mod entry;
mod error;
pub mod explain;
pub mod gc;
pub mod graph;
mod host;
pub mod key;
mod manifest;
mod provided;
#[cfg(feature = "remote")]
mod remote;
mod report;
mod runs;
pub mod sandbox;
mod store;
mod task;
#[cfg(test)]
mod testing;
mod tier;
mod types;
pub mod units;
mod value;
pub mod wit_deps;
#[cfg(feature = "remote")]
mod worker;

pub use args::CallArgs;
pub use cache::{to_json, Audit, Entry, ExportFormat, RecentRuns, Stats, VerifyOptions};
pub use component::{ComponentInfo, Export};
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use gc::{Compaction, Config, GcOptions, GcReport, RemoteSettings};
pub use host::{Host, IoMeter};
pub use manifest::{Manifest, TaskEntry};
#[cfg(feature = "remote")]
pub use remote::{RemoteConfig, WorkerOptions};
pub use report::{CacheMode, CacheStatus, CallOptions, CallRecord, Observer, Outcome, Report};
pub use runs::{RunCall, RunRecord};
pub use sandbox::{DirGrant, Grants, Limits, DEFAULT_TIMEOUT};
pub use store::FORMAT_VERSION;
pub use task::Task;
#[cfg(feature = "remote")]
pub use tier::shared::Published;
pub use types::{FuncType, Type};
pub use value::{Blob, Value};
