//! What the cache remembers about each entry beyond its value: the key
//! manifest (everything the key was made of, in readable form) and the code
//! closures it names. `cairn cache show` prints it, `--explain` compares it,
//! garbage collection follows its references, and `verify --reexecute` runs
//! it again; and, when a call misses, the [`Explanation`] of how its key
//! differs from the nearest stored one ([`crate::explain`] finds it).
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::fmt;
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

/// Why one call missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The key of the earlier entry compared with, if there was one.
    pub against: Option<Digest>,
    /// What differs from it (empty if nothing does).
    pub differences: Vec<Difference>,
}

/// One reason a call missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Difference {
    /// Nothing was ever stored for this export.
    FirstCall,
    /// An entry for the very same key was stored, but its time to live ran out.
    Expired {
        /// When it was stored (ms since the epoch), if known (a recorded
        /// run explained later no longer has the replaced entry).
        created_ms: Option<u64>,
    },
    /// An entry for the very same key was stored but could not be used: its
    /// value was missing or damaged, or the call asked for a refresh.
    Unusable,
    /// A component of the closure changed.
    Component {
        /// Where in the closure: the import path from the called component
        /// (empty for the called component itself).
        path: Vec<String>,
        /// The component's name now.
        name: String,
        /// Its hash then (`None` if that import was not bound then).
        old: Option<Digest>,
        /// Its hash now.
        new: Digest,
    },
    /// An argument changed.
    Argument {
        /// The parameter's name.
        name: String,
        /// The argument then, as shown in the manifest.
        old: String,
        /// The argument now.
        new: String,
    },
    /// The granted capabilities changed.
    Grants {
        /// Grants then.
        old: Vec<String>,
        /// Grants now.
        new: Vec<String>,
    },
    /// The export's signature changed.
    Signature {
        /// Then.
        old: String,
        /// Now.
        new: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::FirstCall => write!(f, "first call of this export"),
            Difference::Expired { .. } => write!(f, "the stored result expired"),
            Difference::Unusable => {
                write!(f, "the stored result was refreshed, or missing or damaged")
            }
            Difference::Component {
                path,
                name,
                old,
                new,
            } => {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!(" (via {})", path.join(" → "))
                };
                match old {
                    Some(old) => write!(
                        f,
                        "component {name}{at} changed: {} → {}",
                        old.short(),
                        new.short()
                    ),
                    None => write!(f, "component {name}{at} newly bound: {}", new.short()),
                }
            }
            Difference::Argument { name, old, new } => {
                write!(f, "argument `{name}` changed: {old} → {new}")
            }
            Difference::Grants { old, new } => write!(
                f,
                "grants changed: [{}] → [{}]",
                old.join(", "),
                new.join(", ")
            ),
            Difference::Signature { old, new } => {
                write!(f, "signature changed: {old} → {new}")
            }
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.differences.iter().map(|d| d.to_string()).collect();
        f.write_str(&parts.join("; "))
    }
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
