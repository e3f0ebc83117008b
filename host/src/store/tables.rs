//! The index's tables.

use redb::TableDefinition;

/// Call key → [`super::ResultRecord`] header followed by its key manifest (JSON).
pub(crate) const RESULTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("results");
/// Object hash → content, for objects up to [`super::INLINE_MAX`] bytes.
pub(crate) const OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("objects");
/// Absolute path → stat-cache entry: files hashed before.
pub(crate) const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// Component hash → its interface ([`crate::ComponentInfo`] in postcard).
pub(crate) const INTERFACES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("interfaces");
/// Where cairn kept interfaces as JSON before [`INTERFACES`]: no longer
/// read, but created with the others, because an older cairn of the same
/// format reads it and takes a missing table for a damaged index.
pub(crate) const OLD_COMPONENTS: TableDefinition<&[u8; 32], &str> =
    TableDefinition::new("components");
/// Artefact key (component × engine) → compiled record.
pub(crate) const COMPILED: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("compiled2");
/// Call key → hits and last hit.
pub(crate) const USAGE: TableDefinition<&[u8; 32], &[u8; 16]> = TableDefinition::new("usage");
/// (export path, created ms, key): entries by export, oldest first.
pub(crate) const BY_EXPORT: TableDefinition<(&str, u64, &[u8; 32]), ()> =
    TableDefinition::new("by_export");
/// Closure → [`crate::entry::ClosureNode`] JSON.
pub(crate) const CLOSURES: TableDefinition<&[u8; 32], &str> = TableDefinition::new("closures");
/// Run id → [`crate::RunRecord`] JSON.
pub(crate) const RUNS: TableDefinition<u64, &str> = TableDefinition::new("runs");
/// Format metadata.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Function key (Cranelift's, hashed) → blake3 of the code, then the code:
/// machine code of single functions, shared by every component that contains
/// them (see [`super::functions`]).
pub(crate) const FUNCTIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("functions");
