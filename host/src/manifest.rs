//! `cairn.toml`: the components of a project, by name, and how flows bind.
//!
//! ```toml
//! [tasks]
//! load = "components/load.wasm"                        # a path, relative to this file
//! train = { path = "components/train.wasm" }
//! parse = { path = "components/parse.wasm", persist = false }   # results kept for the run only
//! clock = { path = "components/clock.wasm", impure = true }      # real clocks: never cached
//! pipeline = "components/pipeline.wasm"
//!
//! [bind]
//! # Where two tasks export the same interface, which one flows import.
//! "example:ml/train@0.1.0" = "train"
//! ```
//!
//! Layer: the host façade (it adds to `Host`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::host::Host;
use crate::task::Task;

/// A parsed `cairn.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The tasks, in name order.
    pub tasks: Vec<TaskEntry>,
    /// Explicit bindings: interface name → task name.
    pub bind: Vec<(String, String)>,
}

/// One task of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskEntry {
    /// Its name in the manifest.
    pub name: String,
    /// The component, resolved against the manifest's directory.
    pub path: PathBuf,
    /// Whether its results are stored (default `true`); `false` keeps them in
    /// memory for one run, for cheap steps with large outputs.
    pub persist: bool,
    /// Whether it gets real clocks and randomness (default `false`); its
    /// calls, and those of flows above it, then always run and are never stored.
    pub impure: bool,
    /// How long its results stay valid (`ttl = "2h"`); `None`: until removed.
    pub ttl: Option<std::time::Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    tasks: BTreeMap<String, RawTask>,
    #[serde(default)]
    bind: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawTask {
    Path(PathBuf),
    Full(RawTaskTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaskTable {
    path: PathBuf,
    #[serde(default = "yes")]
    persist: bool,
    #[serde(default)]
    impure: bool,
    #[serde(default)]
    ttl: Option<String>,
}

fn yes() -> bool {
    true
}

impl Manifest {
    /// The task named `name`.
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`], listing the tasks, if there is none.
    pub fn task(&self, name: &str) -> Result<&TaskEntry> {
        self.tasks.iter().find(|t| t.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.tasks.iter().map(|t| t.name.as_str()).collect();
            Error::new(
                ErrorKind::BadArguments,
                format!(
                    "the manifest has no task `{name}`; it has: {}",
                    names.join(", ")
                ),
            )
        })
    }

    /// Reads and parses the manifest at `path`.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] if it cannot be read; [`ErrorKind::BadArguments`]
    /// with `file:line` for a syntax error, an unknown key, or a binding to a
    /// task it does not name.
    pub fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format_args!("cannot read manifest {}", path.display()), e))?;
        Manifest::parse(&text, path)
    }

    /// Parses manifest `text`, read from `path` (for messages and to resolve
    /// relative component paths).
    ///
    /// # Errors
    /// As [`Manifest::read`].
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let at = |offset: usize| {
            let line = text[..offset.min(text.len())].matches('\n').count() + 1;
            format!("{}:{line}", path.display())
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| at(s.start))
                .unwrap_or_else(|| path.display().to_string());
            let msg = e.message().trim_end().replace('\n', "; ");
            Error::new(ErrorKind::BadArguments, format!("{place}: {msg}"))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let tasks: Vec<TaskEntry> = raw
            .tasks
            .into_iter()
            .map(|(name, t)| {
                let (path, persist, impure, ttl) = match t {
                    RawTask::Path(p) => (p, true, false, None),
                    RawTask::Full(t) => (t.path, t.persist, t.impure, t.ttl),
                };
                let ttl = ttl
                    .map(|ttl_text| {
                        humantime::parse_duration(&ttl_text).map_err(|e| {
                            let place = text
                                .find(&format!("\"{ttl_text}\""))
                                .map(at)
                                .unwrap_or_else(|| at(0));
                            Error::new(
                                ErrorKind::BadArguments,
                                format!("{place}: ttl of task `{name}`: {e} (write e.g. \"2h\" or \"30min\")"),
                            )
                        })
                    })
                    .transpose()?;
                Ok(TaskEntry {
                    name,
                    path: base.join(path),
                    persist,
                    impure,
                    ttl,
                })
            })
            .collect::<Result<_>>()?;
        for (iface, task) in &raw.bind {
            if !tasks.iter().any(|t| &t.name == task) {
                let line = text
                    .find(&format!("\"{iface}\""))
                    .map(at)
                    .unwrap_or_else(|| path.display().to_string());
                return Err(Error::new(
                    ErrorKind::BadArguments,
                    format!("{line}: [bind] names task `{task}`, which [tasks] does not define"),
                ));
            }
        }
        Ok(Manifest {
            tasks,
            bind: raw.bind.into_iter().collect(),
        })
    }
}

impl Host {
    /// Loads every task of `manifest` and returns task `name` with its
    /// imports bound to the others (see [`Host::bind`]).
    ///
    /// Every task is loaded — binding must know what each exports — but a
    /// task that cannot be (its file is missing, or not a component) fails
    /// only a run that needs it: one of that task, or one whose binding then
    /// fails (an import no other task exports, a `[bind]` naming it), with
    /// that task's own error. Any other run goes on, with a warning: a
    /// broken task is never bound, so no key covers code that is not there.
    ///
    /// # Errors
    /// [`ErrorKind::BadArguments`] if the manifest has no task `name`; those of
    /// [`Host::load`] and [`Host::bind`].
    pub fn load_from_manifest(&self, manifest: &Manifest, name: &str) -> Result<Task> {
        manifest.task(name)?;
        // One read snapshot for the tasks' stat-cache and interface lookups.
        let _snapshot = self.calls.store.hold_snapshot();
        let mut tasks = Vec::with_capacity(manifest.tasks.len());
        let mut broken = Vec::new();
        for t in &manifest.tasks {
            match self.load_named(&t.path, t.name.clone()) {
                Ok(task) => tasks.push(
                    task.with_persist(t.persist)
                        .with_impure(t.impure)
                        .with_ttl(t.ttl),
                ),
                Err(e) if t.name == name => return Err(e),
                Err(e) => broken.push((&t.name, e)),
            }
        }
        let root = tasks
            .iter()
            .find(|t| t.name() == name)
            .expect("loaded above");
        match self.bind(root, &tasks, &manifest.bind) {
            // The first broken task may be why: it may export what is missing.
            Err(e) => Err(broken.into_iter().next().map_or(e, |(_, why)| why)),
            Ok(bound) => {
                for (task, why) in broken {
                    tracing::warn!("task `{task}` of the manifest cannot be loaded ({why}); running without it");
                }
                Ok(bound)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_take_a_path_or_a_table() {
        let m = Manifest::parse(
            "[tasks]\na = \"a.wasm\"\nb = { path = \"sub/b.wasm\", persist = false }\n[bind]\n\"x:y/z\" = \"a\"\n",
            Path::new("/p/cairn.toml"),
        )
        .unwrap();
        assert_eq!(
            m.tasks,
            [
                TaskEntry {
                    name: "a".into(),
                    path: "/p/a.wasm".into(),
                    persist: true,
                    impure: false,
                    ttl: None
                },
                TaskEntry {
                    name: "b".into(),
                    path: "/p/sub/b.wasm".into(),
                    persist: false,
                    impure: false,
                    ttl: None
                },
            ]
        );
        assert_eq!(m.bind, [("x:y/z".to_string(), "a".to_string())]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = |text: &str| {
            Manifest::parse(text, Path::new("cairn.toml"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad("[tasks]\na = \"a.wasm\"\nb = { path = \"b.wasm\", presist = false }\n")
                .starts_with("cairn.toml:3:")
        );
        assert!(bad("[tasks]\na = \n").starts_with("cairn.toml:2:"));
        assert!(
            bad("[tasks]\na = \"a.wasm\"\n[bind]\n\"x:y/z\" = \"nope\"\n")
                .starts_with("cairn.toml:4: [bind] names task `nope`")
        );
        assert!(bad("[taks]\n").starts_with("cairn.toml:1:"));
    }
}
