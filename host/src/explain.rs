//! Why did a call miss? Each miss is compared with the nearest earlier entry
//! for the same export, and the differences are named: which component of
//! the closure (by import path, name and hash), which argument (by parameter
//! name), which grant, or that the entry had expired.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::entry::{ClosureNode, KeyManifest};
use crate::error::Result;
use crate::store::{Listed, Store};
use crate::task::Task;

/// How many earlier entries of the same export a miss is compared with.
const CANDIDATES: usize = 256;

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
        /// When it was stored (ms since the epoch).
        created_ms: u64,
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

/// Explains the miss of the call described by `now` (of `task`, under
/// `key`), against what `store` holds.
pub(crate) fn explain(
    store: &Store,
    key: &Digest,
    now: &KeyManifest,
    task: &Task,
) -> Result<Explanation> {
    let candidates = store.entries_for_export(&now.export, CANDIDATES)?;
    if let Some(same) = candidates.iter().find(|c| c.key == *key) {
        let expired = same
            .record
            .expires_ms
            .is_some_and(|t| t <= crate::store::now_ms());
        let d = if expired {
            Difference::Expired {
                created_ms: same.record.created_ms,
            }
        } else {
            Difference::Unusable
        };
        return Ok(Explanation {
            against: Some(*key),
            differences: vec![d],
        });
    }
    let mut best: Option<(&Listed, Vec<Difference>)> = None;
    for c in &candidates {
        let Some(then) = &c.manifest else { continue };
        let diffs = differences(store, then, now, task)?;
        // Fewest differences wins; candidates come newest first, so ties go
        // to the most recent entry.
        if best.as_ref().is_none_or(|(_, d)| diffs.len() < d.len()) {
            best = Some((c, diffs));
        }
    }
    Ok(match best {
        Some((c, differences)) => Explanation {
            against: Some(c.key),
            differences,
        },
        None => Explanation {
            against: None,
            differences: vec![Difference::FirstCall],
        },
    })
}

fn differences(
    store: &Store,
    then: &KeyManifest,
    now: &KeyManifest,
    task: &Task,
) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    if then.closure != now.closure {
        compare_closure(store, then.closure, task, &mut Vec::new(), &mut out)?;
    }
    if then.signature != now.signature {
        out.push(Difference::Signature {
            old: then.signature.clone(),
            new: now.signature.clone(),
        });
    } else {
        for (old, new) in then.args.iter().zip(&now.args) {
            if old.digest != new.digest {
                out.push(Difference::Argument {
                    name: new.name.clone(),
                    old: old.shown.clone(),
                    new: new.shown.clone(),
                });
            }
        }
    }
    if then.sandbox != now.sandbox {
        out.push(Difference::Grants {
            old: then.grants.clone(),
            new: now.grants.clone(),
        });
    }
    Ok(out)
}

/// Walks the stored closure `then` beside `task`, naming the deepest
/// components that differ.
fn compare_closure(
    store: &Store,
    then: Digest,
    task: &Task,
    path: &mut Vec<String>,
    out: &mut Vec<Difference>,
) -> Result<()> {
    let changed = |old: Option<Digest>| Difference::Component {
        path: path.clone(),
        name: task.name.clone(),
        old,
        new: task.hash,
    };
    let Some(node): Option<ClosureNode> = store.closure(&then)? else {
        // The earlier closure was not recorded: say what we can.
        out.push(changed(None));
        return Ok(());
    };
    if node.component != task.hash || node.impure != task.impure {
        out.push(changed(Some(node.component)));
    }
    for (import, child) in task.bound.iter() {
        let old = node.imports.iter().find(|(i, _)| i == import).map(|c| c.1);
        match old {
            Some(old) if old == child.closure => {}
            Some(old) => {
                path.push(import.clone());
                compare_closure(store, old, child, path, out)?;
                path.pop();
            }
            None => out.push(Difference::Component {
                path: [path.as_slice(), std::slice::from_ref(import)].concat(),
                name: child.name.clone(),
                old: None,
                new: child.hash,
            }),
        }
    }
    Ok(())
}
