//! Binding a flow: each import of a component is bound to the task that
//! exports that interface, recursively, so that the flow's key covers the
//! code of everything it can call (its closure).
//!
//! Bottom layer: works on [`Task`]s only.

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::provided::{host_namespace, host_provided, unprovided_error};
use crate::task::Task;

/// Binds the imports of `task` — and, recursively, of the tasks it binds — to
/// the components of `pool` that export them. `choose` names the task to use
/// for an import more than one component exports.
pub(crate) fn bind(task: &Task, pool: &[Task], choose: &[(String, String)]) -> Result<Task> {
    bind_rec(task, pool, choose, &mut Vec::new())
}

fn bind_rec(
    task: &Task,
    pool: &[Task],
    choose: &[(String, String)],
    stack: &mut Vec<(Digest, String)>,
) -> Result<Task> {
    let cycle = stack.iter().any(|(h, _)| *h == task.hash);
    stack.push((task.hash, task.name.clone()));
    if cycle {
        let chain: Vec<&str> = stack.iter().map(|(_, n)| n.as_str()).collect();
        return Err(Error::new(
            ErrorKind::InvalidComponent,
            format!(
                "flows call each other in a cycle: {}; break the cycle",
                chain.join(" → ")
            ),
        ));
    }
    // One pass: what the host provides, what it should but cannot (an
    // error before anything is bound), and what tasks must.
    let mut unprovided = Vec::new();
    let mut imports = Vec::new();
    for import in task.import_names() {
        if host_provided(import) {
            continue;
        }
        if host_namespace(import) {
            unprovided.push(import);
        } else {
            imports.push(import);
        }
    }
    if !unprovided.is_empty() {
        return Err(unprovided_error(&task.name, &unprovided));
    }
    let mut bound = Vec::new();
    for import in imports {
        let providers: Vec<&Task> = pool
            .iter()
            .filter(|t| t.exports_interface(import))
            .collect();
        let chosen = choose
            .iter()
            .find(|(i, _)| i == import)
            .map(|(_, name)| name);
        let provider = match (chosen, providers.as_slice()) {
            (Some(name), _) => providers.iter().find(|t| &t.name == name).copied().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidComponent,
                    format!("`{import}` is bound to `{name}`, which does not export it (or is not given)"),
                )
            })?,
            (None, [one]) => *one,
            (None, []) => return Err(unbound_error(task, &[import])),
            (None, many) => {
                return Err(Error::new(
                    ErrorKind::InvalidComponent,
                    format!(
                        "`{import}` (imported by {}) is exported by {}; choose one under [bind] in cairn.toml",
                        task.name,
                        many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" and ")
                    ),
                ))
            }
        };
        bound.push((import.to_owned(), bind_rec(provider, pool, choose, stack)?));
    }
    stack.pop();
    let mut out = task.clone();
    out.set_bound(bound);
    Ok(out)
}

/// The error of a task whose imports are not all provided: the host's own
/// namespaces first (only a rebuild helps), then a flow's unbound imports.
pub(crate) fn unbound_error(task: &Task, unbound: &[&str]) -> Error {
    let host: Vec<&str> = unbound
        .iter()
        .copied()
        .filter(|i| host_namespace(i))
        .collect();
    if !host.is_empty() {
        return unprovided_error(&task.name, &host);
    }
    Error::new(
        ErrorKind::InvalidComponent,
        format!(
            "{} imports {} which no component provides; give the component that exports it with --with (or in cairn.toml)",
            task.name,
            unbound.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        ),
    )
}
