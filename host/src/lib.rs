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
//! # Example
//!
//! ```no_run
//! use cairn::{CacheStatus, Host, Value};
//!
//! # fn main() -> cairn::Result<()> {
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
mod blob;
mod cache;
pub mod codec;
mod component;
mod digest;
mod engine;
pub mod entry;
mod error;
pub mod explain;
mod flow;
pub mod gc;
pub mod graph;
mod host;
pub mod key;
mod manifest;
mod remote;
mod runs;
pub mod sandbox;
mod store;
mod task;
#[cfg(test)]
mod testing;
mod types;
pub mod units;
mod value;

pub use args::CallArgs;
pub use cache::{to_json, Audit, Entry, ExportFormat, RecentRuns, Stats, VerifyOptions};
pub use component::{ComponentInfo, Export};
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use gc::{Compaction, Config, GcOptions, GcReport, RemoteSettings};
pub use host::{CacheMode, CacheStatus, CallOptions, CallRecord, Host, Observer, Outcome, Report};
pub use manifest::{Manifest, TaskEntry};
pub use remote::{Published, RemoteConfig, WorkerOptions};
pub use runs::{RunCall, RunRecord};
pub use sandbox::{DirGrant, Grants, Limits};
pub use store::FORMAT_VERSION;
pub use task::Task;
pub use types::{FuncType, Type};
pub use value::{Blob, Value};
