//! What the cache remembers about each entry beyond its value: the key
//! manifest (everything the key was made of, in readable form) and the code
//! closures it names. `cairn cache show` prints it, `--explain` compares it,
//! garbage collection follows its references, and `verify --reexecute` runs
//! it again.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Everything a call's key was made of, kept with its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyManifest {
    /// The called task's name (its file, or its name in `cairn.toml`).
    pub component: String,
    /// The called component's code closure (see [`crate::key::closure`]).
    pub closure: Digest,
    /// The export path.
    pub export: String,
    /// The export's WIT signature.
    pub signature: String,
    /// The arguments, by parameter.
    pub args: Vec<ArgManifest>,
    /// The digest of the capabilities granted.
    pub sandbox: Digest,
    /// The capabilities granted, for people (`dir /data -> /in (ro)`, `env K`).
    pub grants: Vec<String>,
    /// The object holding the arguments' canonical encoding, for re-execution.
    pub args_object: (Digest, u64),
    /// Blobs inside the result (stored objects).
    pub blobs: Vec<(Digest, u64)>,
    /// File-backed blobs among the arguments: their hash and path, so a
    /// re-execution can find them (the cache never copies input files).
    pub inputs: Vec<(Digest, PathBuf)>,
}

/// One argument of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArgManifest {
    /// The parameter's name.
    pub name: String,
    /// The digest of the argument's canonical encoding.
    pub digest: Digest,
    /// The argument in WAVE, shortened to [`ArgManifest::SHOWN_MAX`]
    /// characters; a file-backed blob shows its path.
    pub shown: String,
}

impl ArgManifest {
    /// How much of an argument is kept for people to read.
    pub const SHOWN_MAX: usize = 120;
}

/// One node of a code closure: a component and what its imports are bound
/// to, by closure. Stored once per distinct closure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClosureNode {
    /// The task's name when it was stored.
    pub name: String,
    /// The component's hash (its bytes).
    pub component: Digest,
    /// Whether it runs with real clocks and randomness.
    pub impure: bool,
    /// Bound imports: import name and the closure of the bound task.
    pub imports: Vec<(String, Digest)>,
}

/// Shortens `text` to at most `max` characters, marking the cut with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_marks_the_cut() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
