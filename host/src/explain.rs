//! Why did a call miss? Each miss is compared with the nearest earlier entry
//! for the same export, and the differences are named: which component of
//! the closure (by import path, name and hash), which argument (by parameter
//! name), which grant, or that the entry had expired.
//!
//! Layer: beside the engine and the tiers; reads the local store. May
//! import the stores and the bottom layer.

use crate::digest::Digest;
use crate::entry::{ClosureNode, KeyManifest};
pub use crate::entry::{Difference, Explanation};
use crate::error::Result;
use crate::report::CacheStatus;
use crate::runs::RunRecord;
use crate::store::{Listed, Store};

/// How many earlier entries of the same export a miss is compared with.
const CANDIDATES: usize = 256;

/// Where closure nodes come from: the store, and (for a call about to run)
/// the task's own tree, not stored yet.
pub(crate) type Nodes<'a> = dyn Fn(&Digest) -> Result<Option<ClosureNode>> + 'a;

/// Explains the miss of the call described by `now` (under `key`), against
/// the entries for its export stored before `before_ms`.
pub(crate) fn explain(
    store: &Store,
    key: &Digest,
    now: &KeyManifest,
    before_ms: u64,
    nodes: &Nodes<'_>,
) -> Result<Explanation> {
    let candidates: Vec<Listed> = store
        .entries_for_export(&now.export, CANDIDATES)?
        .into_iter()
        .filter(|c| c.record.created_ms < before_ms)
        .collect();
    if candidates.iter().any(|c| c.key == *key) {
        return Ok(Explanation {
            against: Some(*key),
            differences: vec![Difference::Unusable],
        });
    }
    let mut best: Option<(&Listed, Vec<Difference>)> = None;
    for c in &candidates {
        let Some(then) = &c.manifest else { continue };
        let diffs = differences(then, now, nodes)?;
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

/// Explains the misses of a recorded run, from what the cache holds now:
/// each miss's own entry against the entries stored before the run.
/// `None` for calls that hit, or whose entry is gone (failed, uncacheable,
/// not persisted, or removed since).
pub(crate) fn explain_run(store: &Store, run: &RunRecord) -> Result<Vec<Option<Explanation>>> {
    let nodes = |c: &Digest| store.closure(c);
    run.calls
        .iter()
        .map(|call| match call.cache {
            CacheStatus::Hit | CacheStatus::Uncacheable => Ok(None),
            CacheStatus::Expired => Ok(Some(Explanation {
                against: Some(call.key),
                differences: vec![Difference::Expired { created_ms: None }],
            })),
            CacheStatus::Miss => {
                let Some(manifest) = store.entry(&call.key)?.and_then(|e| e.manifest) else {
                    return Ok(None);
                };
                explain(store, &call.key, &manifest, run.started_ms, &nodes).map(Some)
            }
        })
        .collect()
}

fn differences(
    then: &KeyManifest,
    now: &KeyManifest,
    nodes: &Nodes<'_>,
) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    if then.closure != now.closure {
        compare_closure(then.closure, now.closure, nodes, &mut Vec::new(), &mut out)?;
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

/// Walks closures `then` and `now` side by side, naming the deepest
/// components that differ.
fn compare_closure(
    then: Digest,
    now: Digest,
    nodes: &Nodes<'_>,
    path: &mut Vec<String>,
    out: &mut Vec<Difference>,
) -> Result<()> {
    let Some(new) = nodes(&now)? else {
        return Ok(());
    };
    let changed = |old: Option<Digest>| Difference::Component {
        path: path.clone(),
        name: new.name.clone(),
        old,
        new: new.component,
    };
    let Some(old) = nodes(&then)? else {
        // The earlier closure was not recorded: say what we can.
        out.push(changed(None));
        return Ok(());
    };
    if old.component != new.component || old.impure != new.impure {
        out.push(changed(Some(old.component)));
    }
    for (import, child) in &new.imports {
        match old.imports.iter().find(|(i, _)| i == import).map(|c| c.1) {
            Some(before) if before == *child => {}
            Some(before) => {
                path.push(import.clone());
                compare_closure(before, *child, nodes, path, out)?;
                path.pop();
            }
            None => {
                if let Some(node) = nodes(child)? {
                    out.push(Difference::Component {
                        path: [path.as_slice(), std::slice::from_ref(import)].concat(),
                        name: node.name,
                        old: None,
                        new: node.component,
                    });
                }
            }
        }
    }
    Ok(())
}
