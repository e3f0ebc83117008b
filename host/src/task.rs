//! [`Task`]: a loaded component, and the components bound to its imports.
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::component::{Export, Interface};
use crate::digest::Digest;
use crate::entry::ClosureNode;
use crate::error::{Error, ErrorKind, Result};
use crate::key;
use crate::provided::{host_namespace, host_provided};
use crate::types::FuncType;

/// A loaded component: its hash, interface, and (for a flow) the tasks bound
/// to its imports. Its bytes are read only when one of its calls misses.
///
/// Cloning is cheap; clones share everything.
#[derive(Debug, Clone)]
pub struct Task {
    pub(crate) hash: Digest,
    pub(crate) name: String,
    pub(crate) path: Option<PathBuf>,
    pub(crate) bytes: Arc<OnceLock<Arc<[u8]>>>,
    pub(crate) info: Arc<Interface>,
    /// Import name → the task bound to it, sorted by import name.
    pub(crate) bound: Arc<[(String, Task)]>,
    pub(crate) closure: Digest,
    pub(crate) persist: bool,
    pub(crate) impure: bool,
    /// How long its results stay valid; `None`: until removed.
    pub(crate) ttl: Option<std::time::Duration>,
}

impl Task {
    pub(crate) fn new(
        hash: Digest,
        name: String,
        path: Option<PathBuf>,
        bytes: Arc<OnceLock<Arc<[u8]>>>,
        info: Interface,
    ) -> Task {
        Task {
            hash,
            name,
            path,
            bytes,
            info: Arc::new(info),
            bound: Arc::from([]),
            closure: key::closure(hash, false, &[]),
            persist: true,
            impure: false,
            ttl: None,
        }
    }

    /// Sets the bound tasks and recomputes the closure from them.
    pub(crate) fn set_bound(&mut self, mut bound: Vec<(String, Task)>) {
        bound.sort_by(|a, b| a.0.cmp(&b.0));
        self.bound = bound.into();
        self.refresh_closure();
    }

    fn refresh_closure(&mut self) {
        let children: Vec<(String, Digest)> = self
            .bound
            .iter()
            .map(|(i, t)| (i.clone(), t.closure))
            .collect();
        self.closure = key::closure(self.hash, self.impure, &children);
    }

    /// Identifies how this task links: its closure and the storage policy of
    /// it and every task below it (which the linked import functions carry).
    pub(crate) fn link_id(&self) -> Digest {
        let mut h = blake3::Hasher::new_derive_key("cairn link id");
        h.update(self.closure.as_bytes());
        h.update(&[u8::from(self.persist)]);
        for (_, child) in self.bound.iter() {
            h.update(child.link_id().as_bytes());
        }
        h.finalize().into()
    }

    /// `blake3` of the component's bytes: its identity.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The code closure: this component's hash and the closures of every
    /// component bound below it (see [`crate::key::closure`]). Calls are keyed by it.
    pub fn closure(&self) -> Digest {
        self.closure
    }

    /// The name used in messages and reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This task under another name.
    pub fn named(mut self, name: impl Into<String>) -> Task {
        self.name = name.into();
        self
    }

    /// Whether results of this task are written to the cache (the default),
    /// or only kept in memory for the life of the [`crate::Host`].
    pub fn persist(&self) -> bool {
        self.persist
    }

    /// This task with results kept in memory only (`false`) or stored (`true`).
    pub fn with_persist(mut self, persist: bool) -> Task {
        self.persist = persist;
        self
    }

    /// Whether this task gets real clocks and randomness wherever it is
    /// called, which makes its calls (and those of flows above it) uncacheable.
    pub fn impure(&self) -> bool {
        self.impure
    }

    /// This task with real clocks and randomness (`true`) or the
    /// deterministic environment (`false`, the default).
    pub fn with_impure(mut self, impure: bool) -> Task {
        if impure != self.impure {
            self.impure = impure;
            self.refresh_closure();
        }
        self
    }

    /// How long results of this task stay valid (`None`: until removed).
    pub fn ttl(&self) -> Option<std::time::Duration> {
        self.ttl
    }

    /// This task with results that expire `ttl` after they are stored. An
    /// expired result is a miss (reported as expired); a flow's result
    /// expires no later than the results it was made from.
    pub fn with_ttl(mut self, ttl: Option<std::time::Duration>) -> Task {
        self.ttl = ttl;
        self
    }

    /// The exported functions.
    pub fn exports(&self) -> &[Export] {
        self.info.exports()
    }

    /// The imported interfaces and functions.
    pub fn imports(&self) -> &[String] {
        self.info.imports()
    }

    /// The names of [`Task::imports`], without making a list of them.
    pub(crate) fn import_names(&self) -> impl Iterator<Item = &str> {
        self.info.import_names()
    }

    /// The tasks bound to this task's imports, by import name.
    pub fn bound(&self) -> &[(String, Task)] {
        &self.bound
    }

    /// Imports of WASI or `cairn:task` that the host does not provide, such
    /// as `wasi:http/types@0.2.3`: the component cannot run under cairn
    /// until it is rebuilt without them.
    pub fn unprovided_imports(&self) -> Vec<&str> {
        self.import_names()
            .filter(|i| host_namespace(i) && !host_provided(i))
            .collect()
    }

    /// Imports that neither the host nor a bound task provides.
    pub fn unbound_imports(&self) -> Vec<&str> {
        self.import_names()
            .filter(|i| !host_provided(i) && !self.bound.iter().any(|(b, _)| b == i))
            .collect()
    }

    /// Whether this task exports interface `name`.
    pub(crate) fn exports_interface(&self, name: &str) -> bool {
        self.info.exports_interface(name)
    }

    /// The task's own exports: all but a language runtime's internal ones
    /// (see [`Export::runtime_internal`]).
    pub fn own_exports(&self) -> impl Iterator<Item = &Export> {
        self.exports()
            .iter()
            .filter(|e| e.runtime_internal().is_none())
    }

    /// The export `query` names: its full path, its bare function name, or
    /// `interface#func` with the interface's short name (a runtime's
    /// internal export only by its full path). `None` picks the only export
    /// of the task's own.
    ///
    /// # Errors
    /// [`ErrorKind::UnknownExport`] when nothing or more than one export matches;
    /// the message lists the exports.
    pub fn export(&self, query: Option<&str>) -> Result<&Export> {
        let found: Vec<&Export> = match query {
            // A runtime's own export only by its full path: a bare `init`
            // must not run componentize-py's setup.
            Some(q) => self
                .exports()
                .iter()
                .filter(|e| match e.runtime_internal() {
                    Some(_) => q == e.path(),
                    None => e.matches(q),
                })
                .collect(),
            None => self.own_exports().collect(),
        };
        match (found.as_slice(), query) {
            ([one], _) => Ok(one),
            ([], Some(q)) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "{} has no export `{q}`; it exports: {}",
                    self.name,
                    self.export_list()
                ),
            )),
            ([], None) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!("{} exports no functions; nothing to run", self.name),
            )),
            (_, Some(q)) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "`{q}` could be any of {}; give the full name",
                    found
                        .iter()
                        .map(|e| e.path())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            (_, None) => Err(Error::new(
                ErrorKind::UnknownExport,
                format!(
                    "{} has {} exports; name one after the component: {}",
                    self.name,
                    found.len(),
                    self.export_list()
                ),
            )),
        }
    }

    fn export_list(&self) -> String {
        let names: Vec<String> = self.own_exports().map(Export::path).collect();
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    }

    /// The export `query` names and its signature.
    pub(crate) fn resolve(&self, query: &str) -> Result<(&Export, &FuncType)> {
        let export = self.export(Some(query))?;
        let ty = export.ty.as_ref().map_err(|why| {
            Error::new(
                ErrorKind::InvalidComponent,
                format!("cannot call `{}` of {}: {why}", export.path(), self.name),
            )
        })?;
        Ok((export, ty))
    }

    /// The component's bytes, read (and checked against its hash) on first use.
    /// The closure tree of this task: each node with the task it describes,
    /// this task first.
    pub(crate) fn closure_nodes<'a>(&'a self, out: &mut Vec<(Digest, ClosureNode, &'a Task)>) {
        let node = ClosureNode {
            name: self.name.clone(),
            component: self.hash,
            impure: self.impure,
            imports: self
                .bound
                .iter()
                .map(|(i, t)| (i.clone(), t.closure))
                .collect(),
        };
        out.push((self.closure, node, self));
        for (_, child) in self.bound.iter() {
            child.closure_nodes(out);
        }
    }

    pub(crate) fn bytes(&self) -> Result<Arc<[u8]>> {
        if let Some(b) = self.bytes.get() {
            return Ok(b.clone());
        }
        let path = self
            .path
            .as_ref()
            .ok_or_else(|| Error::internal("a task without bytes or path"))?;
        let bytes: Arc<[u8]> = std::fs::read(path)
            .map_err(|e| Error::io(format_args!("cannot read {}", path.display()), e))?
            .into();
        if Digest::of(&bytes) != self.hash {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{} changed while cairn was using it; run again",
                    path.display()
                ),
            ));
        }
        Ok(self.bytes.get_or_init(|| bytes).clone())
    }
}
