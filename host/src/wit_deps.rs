//! The WIT a flow needs to import a task's interfaces, read from the task's
//! component: what `cairn wit` writes into a flow's `wit/deps/`.
//!
//! A flow in its own crate imports, say, `example:words/count@0.1.0`; its
//! bindings generator (wit-bindgen, componentize-py, jco) needs that
//! interface's WIT, and the WIT of every interface it uses types from
//! (`cairn:task/blobs` for a blob). [`packages`] reads them from the
//! component itself, the same source `wasm-tools component wit` reads, so the
//! flow's view cannot drift from the code cairn binds. With `concurrent`, the
//! functions are written `async func`: the view of a flow that awaits several
//! calls at once (cairn still binds the task's plain exports).
//!
//! Layer: bottom (data); imports only other bottom-layer modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use wit_parser::decoding::DecodedWasm;
use wit_parser::{FunctionKind, InterfaceId, PackageId, Resolve, Type, TypeDefKind, WorldItem};

use crate::error::{Error, ErrorKind, Result};

/// The `cairn:task` package, written as cairn ships it (with its docs) rather
/// than as decoded from a component, so that it matches what the guest SDKs
/// install in `wit/deps/cairn-task/`.
const CAIRN_TASK: &str = include_str!("../wit/task.wit");
const CAIRN_TASK_NAME: &str = "cairn:task@0.1.0";

/// One WIT package a flow needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitPackage {
    /// `namespace:name@version`.
    pub name: String,
    /// The directory under `wit/deps/` it goes in (`example-words`).
    pub dir: String,
    /// Its file name in that directory (`words.wit`).
    pub file: String,
    /// The interfaces a flow can import from it (`example:words/count@0.1.0`);
    /// empty for a package needed only for its types.
    pub imports: Vec<String>,
    /// The WIT text.
    pub text: String,
}

/// What [`write()`] did with one package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The package.
    pub package: WitPackage,
    /// Where its file is.
    pub path: PathBuf,
    /// Whether the file changed (`false`: it was there with this content).
    pub changed: bool,
}

/// The WIT packages of the interfaces `bytes` (a component; `what` names it
/// in messages) exports, and of the interfaces they take types from, in name
/// order. `wasi:*` packages are left out: a flow gets WASI from its toolchain.
///
/// # Errors
/// [`ErrorKind::InvalidComponent`] if the bytes do not decode as a component;
/// [`ErrorKind::BadArguments`] if it exports no interface (only bare
/// functions, which a flow cannot import).
pub fn packages(bytes: &[u8], what: &str, concurrent: bool) -> Result<Vec<WitPackage>> {
    let (mut resolve, world) = match wit_parser::decoding::decode(bytes) {
        Ok(DecodedWasm::Component(r, w)) => (r, w),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err(Error::new(
                ErrorKind::NotAComponent,
                format!("{what} is a WIT package, not a task's component"),
            ))
        }
        Err(e) => {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                format!("{what} is not a valid component: {e}; rebuild it"),
            ))
        }
    };
    let exported: Vec<InterfaceId> = resolve.worlds[world]
        .exports
        .values()
        .filter_map(|item| match item {
            WorldItem::Interface { id, .. } if resolve.interfaces[*id].package.is_some() => {
                Some(*id)
            }
            _ => None,
        })
        .collect();
    if exported.is_empty() {
        return Err(Error::new(
            ErrorKind::BadArguments,
            format!(
                "{what} exports no WIT interface, only bare functions, which a flow cannot \
                 import; export an interface (`export my-interface;`) from its world"
            ),
        ));
    }
    let needed = with_type_sources(&resolve, &exported);
    if concurrent {
        for id in &exported {
            for f in resolve.interfaces[*id].functions.values_mut() {
                if f.kind == FunctionKind::Freestanding {
                    f.kind = FunctionKind::AsyncFreestanding;
                }
            }
        }
    }
    let mut by_package: BTreeMap<String, (PackageId, Vec<InterfaceId>)> = BTreeMap::new();
    for id in needed {
        let pkg = resolve.interfaces[id]
            .package
            .expect("named interfaces only");
        let name = resolve.packages[pkg].name.to_string();
        if resolve.packages[pkg].name.namespace == "wasi" {
            continue;
        }
        by_package
            .entry(name)
            .or_insert((pkg, Vec::new()))
            .1
            .push(id);
    }
    by_package
        .into_iter()
        .map(|(name, (pkg, ifaces))| {
            let imports = ifaces
                .iter()
                .filter(|id| exported.contains(id))
                .filter_map(|id| resolve.id_of(*id))
                .collect();
            package(&mut resolve, pkg, &name, &ifaces, imports, what)
        })
        .collect()
}

/// [`packages`] of the component in file `path`.
///
/// # Errors
/// [`ErrorKind::Io`] if the file cannot be read; otherwise as [`packages`].
pub fn packages_of_file(path: &Path, concurrent: bool) -> Result<Vec<WitPackage>> {
    let what = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format_args!("cannot read {what}"), e))?;
    packages(&bytes, &what, concurrent)
}

/// `exported` and every interface whose types they use, transitively.
fn with_type_sources(resolve: &Resolve, exported: &[InterfaceId]) -> BTreeSet<InterfaceId> {
    let mut seen: BTreeSet<InterfaceId> = BTreeSet::new();
    let mut todo: Vec<InterfaceId> = exported.to_vec();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for ty in resolve.interfaces[id].types.values() {
            if let TypeDefKind::Type(Type::Id(source)) = resolve.types[*ty].kind {
                if let wit_parser::TypeOwner::Interface(owner) = resolve.types[source].owner {
                    todo.push(owner);
                }
            }
        }
    }
    seen
}

/// The WIT text of package `pkg`, keeping only `keep` of its interfaces.
fn package(
    resolve: &mut Resolve,
    pkg: PackageId,
    name: &str,
    keep: &[InterfaceId],
    imports: Vec<String>,
    what: &str,
) -> Result<WitPackage> {
    let id = &resolve.packages[pkg].name;
    let dir = format!("{}-{}", id.namespace, id.name);
    let file = format!("{}.wit", id.name);
    if name == CAIRN_TASK_NAME {
        return Ok(WitPackage {
            name: name.to_string(),
            dir,
            file,
            imports,
            text: CAIRN_TASK.to_string(),
        });
    }
    resolve.packages[pkg]
        .interfaces
        .retain(|_, id| keep.contains(id));
    resolve.packages[pkg].worlds.clear();
    let mut printer = wit_component::WitPrinter::default();
    printer.print(resolve, pkg, &[]).map_err(|e| {
        Error::new(
            ErrorKind::InvalidComponent,
            format!("cannot write the WIT of {name} from {what}: {e}"),
        )
    })?;
    Ok(WitPackage {
        name: name.to_string(),
        dir,
        file,
        imports,
        // In the layout merging prints, so that writing again changes nothing.
        text: Printed::parse(&printer.output.to_string()).print(),
    })
}

/// Writes `packages` under `deps` (`deps/<dir>/<file>`), leaving files that
/// already hold the same text untouched. A package file already there from
/// another task of the same package (`load` and `train` both in
/// `example:ml`) is merged with it: interfaces, types and functions of both,
/// this component's winning where both define one. Files are replaced
/// whole (written aside, then renamed), and nothing is written through a
/// symbolic link (a `cairn-task` linked to cairn's own `wit/` stays as it is).
///
/// # Errors
/// [`ErrorKind::Io`] when a directory or file cannot be written;
/// [`ErrorKind::BadArguments`] when an existing file cannot be merged with
/// this component's WIT (another version of the package, a file not laid
/// out as `cairn wit` writes it, or a merge that does not parse with the
/// rest of `deps`), or when another file of `deps` defines the package.
pub fn write(deps: &Path, packages: Vec<WitPackage>) -> Result<Vec<Written>> {
    let texts: Vec<(String, String)> = packages
        .iter()
        .map(|p| (p.name.clone(), p.text.clone()))
        .collect();
    let existing = deps_files(deps);
    packages
        .into_iter()
        .map(|mut package| {
            let dir = deps.join(&package.dir);
            let path = dir.join(&package.file);
            if let Some((other, _)) = existing
                .iter()
                .find(|(p, text)| *p != path && declares(text, &package.name))
            {
                return Err(Error::new(
                    ErrorKind::BadArguments,
                    format!(
                        "{} already defines {}; remove it to let `cairn wit` write {}, or keep it and skip this task",
                        other.display(),
                        package.name,
                        path.display()
                    ),
                ));
            }
            if is_link(&dir) || is_link(&path) {
                return Ok(Written { package, path, changed: false });
            }
            let old = std::fs::read_to_string(&path).ok();
            if let (Some(old), false) = (&old, package.name == CAIRN_TASK_NAME) {
                package.text = merge(old, &package.text).map_err(|why| {
                    Error::new(
                        ErrorKind::BadArguments,
                        format!(
                            "{} cannot be merged with {}'s WIT: {why}; delete it and run `cairn wit` again for each task of that package",
                            path.display(),
                            package.name
                        ),
                    )
                })?;
                check(&package, &texts, &existing, &path)?;
            }
            let changed = old.as_deref() != Some(&package.text);
            if changed {
                replace(&dir, &path, &package.text)?;
            }
            Ok(Written {
                package,
                path,
                changed,
            })
        })
        .collect()
}

/// Every `.wit` file under `deps` (following links), with its text.
fn deps_files(deps: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![deps.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "wit") {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push((path, text));
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether WIT `text` declares package `name` (`package name;`).
fn declares(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.trim()
            .strip_prefix("package ")
            .map(|r| r.trim_end_matches(';').trim())
            == Some(name)
    })
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Replaces `path` (in `dir`) with `text` whole: written aside, then renamed.
fn replace(dir: &Path, path: &Path, text: &str) -> Result<()> {
    let failed = |e| Error::io(format_args!("cannot write {}", path.display()), e);
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut aside = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    std::io::Write::write_all(&mut aside, text.as_bytes()).map_err(failed)?;
    aside.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// Checks that a merged `package` still parses, given the packages written
/// with it and every other file of `deps` (its `use`s).
fn check(
    package: &WitPackage,
    written: &[(String, String)],
    existing: &[(PathBuf, String)],
    path: &Path,
) -> Result<()> {
    let mut resolve = Resolve::default();
    let mut todo: Vec<&String> = written
        .iter()
        .filter(|(name, _)| *name != package.name)
        .map(|(_, text)| text)
        .chain(
            existing
                .iter()
                .filter(|(p, text)| p != path && !written.iter().any(|(n, _)| declares(text, n)))
                .map(|(_, text)| text),
        )
        .collect();
    // Dependencies first: retry what failed until nothing more goes in.
    while !todo.is_empty() {
        let before = todo.len();
        todo.retain(|t| resolve.push_str("dep.wit", t.as_str()).is_err());
        if todo.len() == before {
            break;
        }
    }
    resolve
        .push_str(path.display().to_string(), &package.text)
        .map(drop)
        .map_err(|e| {
            Error::new(
                ErrorKind::BadArguments,
                format!(
                    "{} cannot be merged with {}'s WIT ({e}); delete it and run `cairn wit` again \
                     for each task of that package",
                    path.display(),
                    package.name
                ),
            )
        })
}

/// One package file as `WitPrinter` prints it: its `package …;` line and
/// its interfaces, each a list of items (a `use`, a type, a function) with
/// the lines of each.
struct Printed {
    header: String,
    interfaces: Vec<(String, Vec<Vec<String>>)>,
}

impl Printed {
    fn parse(text: &str) -> Printed {
        let mut header = String::new();
        let mut interfaces: Vec<(String, Vec<Vec<String>>)> = Vec::new();
        let mut docs: Vec<String> = Vec::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() {
                continue;
            } else if indent == 0 && trimmed.starts_with("package ") {
                header = line.to_string();
            } else if indent == 0 && trimmed.starts_with("interface ") {
                let name = trimmed["interface ".len()..]
                    .trim_end_matches(" {")
                    .to_string();
                interfaces.push((name, Vec::new()));
            } else if indent == 0 {
                // `}` closing an interface, or docs above one (dropped).
            } else if let Some((_, items)) = interfaces.last_mut() {
                if (trimmed.starts_with("//") || trimmed.starts_with('@')) && indent == 2 {
                    docs.push(line.to_string());
                } else if indent == 2 && !trimmed.starts_with('}') {
                    let mut item = std::mem::take(&mut docs);
                    item.push(line.to_string());
                    items.push(item);
                } else if let Some(item) = items.last_mut() {
                    item.push(line.to_string());
                }
            }
        }
        Printed { header, interfaces }
    }

    fn print(&self) -> String {
        let mut out = format!("{}\n", self.header);
        for (name, items) in &self.interfaces {
            out.push_str(&format!("\ninterface {name} {{\n"));
            let (uses, rest): (Vec<_>, Vec<_>) =
                items.iter().partition(|i| key(i).starts_with("use "));
            for (n, item) in uses.iter().chain(&rest).enumerate() {
                if n > 0 && !(key(item).starts_with("use ") && n < uses.len()) {
                    out.push('\n');
                }
                for line in item.iter() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out.push_str("}\n");
        }
        out
    }
}

/// What an item defines: `use …` lines by their text, types and functions by
/// name (a function's name ends at its colon, a type's follows its kind).
fn key(item: &[String]) -> String {
    let first = item
        .iter()
        .find(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with('@'))
        .map_or("", |l| l.trim());
    if first.starts_with("use ") {
        return first.to_string();
    }
    match first.split_once(':') {
        Some((name, _)) if !name.contains(' ') => format!("func {name}"),
        _ => {
            let name = first.split_whitespace().nth(1).unwrap_or(first);
            format!("type {}", name.trim_end_matches([';', '{']))
        }
    }
}

/// `old` with `new`'s interfaces and items added, `new`'s winning where both
/// define the same item. Refuses another version of the package, and a file
/// not laid out as [`Printed`] prints (edited by hand), rather than lose
/// what it does not understand.
fn merge(old: &str, new: &str) -> std::result::Result<String, String> {
    let mut merged = Printed::parse(old);
    if merged.print() != old {
        return Err("it is not laid out as `cairn wit` writes it (edited by hand?)".into());
    }
    let new = Printed::parse(new);
    if merged.header != new.header {
        return Err(format!(
            "it says `{}`, the task `{}`",
            merged.header, new.header
        ));
    }
    for (name, items) in new.interfaces {
        match merged.interfaces.iter_mut().find(|(n, _)| *n == name) {
            None => merged.interfaces.push((name, items)),
            Some((_, have)) => {
                for item in items {
                    match have.iter_mut().find(|h| key(h) == key(&item)) {
                        Some(same) => *same = item,
                        None => have.push(item),
                    }
                }
            }
        }
    }
    Ok(merged.print())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = r#"
        package example:words@0.1.0;
        interface types { record counted { word: string, count: u64 } }
        interface count {
          use types.{counted};
          /// The most common words.
          top: func(text: string, n: u32) -> list<counted>;
        }
        interface unused { nothing: func(); }
        world words { export count; }
    "#;

    /// A component exporting `count` (with a no-op body for each function).
    fn words() -> Vec<u8> {
        crate::testing::component_exporting(TASK, "words")
    }

    #[test]
    fn a_flow_gets_the_exported_interface_and_its_type_sources() {
        let got = packages(&words(), "words.wasm", false).unwrap();
        assert_eq!(got.len(), 1);
        let words = &got[0];
        assert_eq!(words.name, "example:words@0.1.0");
        assert_eq!(
            (words.dir.as_str(), words.file.as_str()),
            ("example-words", "words.wit")
        );
        assert_eq!(words.imports, ["example:words/count@0.1.0"]);
        assert!(words.text.contains("interface count"), "{}", words.text);
        assert!(words.text.contains("interface types"), "{}", words.text);
        assert!(
            words
                .text
                .contains("top: func(text: string, n: u32) -> list<counted>"),
            "{}",
            words.text
        );
        assert!(
            !words.text.contains("unused"),
            "an interface nothing needs: {}",
            words.text
        );
        // What was written parses as WIT.
        let mut resolve = Resolve::default();
        resolve.push_str("words.wit", &words.text).unwrap();
    }

    #[test]
    fn the_concurrent_view_declares_async_functions() {
        let got = packages(&words(), "words.wasm", true).unwrap();
        assert!(got[0].text.contains("top: async func("), "{}", got[0].text);
    }

    #[test]
    fn writing_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), packages(&words(), "w", false).unwrap()).unwrap();
        assert!(first[0].changed);
        assert!(first[0].path.ends_with("example-words/words.wit"));
        let again = write(dir.path(), packages(&words(), "w", false).unwrap()).unwrap();
        assert!(!again[0].changed);
    }

    /// Two tasks of one package, each exporting one interface that uses its
    /// own part of a shared `types` interface.
    const SHARED: &str = r#"
        package example:ml@0.1.0;
        interface types {
          record hyperparams { rate: f64 }
          record report { accuracy: f64 }
        }
        interface train { use types.{hyperparams}; fit: func(hp: hyperparams) -> u32; }
        interface evaluate { use types.{report}; score: func(model: u32) -> report; }
        world trainer { export train; }
        world evaluator { export evaluate; }
    "#;

    #[test]
    fn tasks_of_one_package_merge_into_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let train = crate::testing::component_exporting(SHARED, "trainer");
        let evaluate = crate::testing::component_exporting(SHARED, "evaluator");
        write(dir.path(), packages(&train, "train", false).unwrap()).unwrap();
        let written = write(dir.path(), packages(&evaluate, "evaluate", false).unwrap()).unwrap();
        let text = std::fs::read_to_string(&written[0].path).unwrap();
        for part in [
            "record hyperparams",
            "record report",
            "interface train",
            "interface evaluate",
            "fit: func",
            "score: func",
        ] {
            assert!(text.contains(part), "{part} missing from:\n{text}");
        }
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("ml.wit", &text).unwrap();
        assert_eq!(resolve.packages[pkg].interfaces.len(), 3, "{text}");
        // Writing either again changes nothing.
        let again = write(dir.path(), packages(&train, "train", false).unwrap()).unwrap();
        assert!(
            !again[0].changed,
            "{}",
            std::fs::read_to_string(&again[0].path).unwrap()
        );
    }

    /// One package, two tasks: `wa` uses blobs, `wb` does not.
    const TWO: &str = r#"
        package example:two@0.1.0;
        interface a { use cairn:task/blobs@0.1.0.{blob}; size: func(b: borrow<blob>) -> u64; }
        interface b { twice: func(n: u64) -> u64; }
        world wa { export a; }
        world wb { export b; }
    "#;

    #[test]
    fn a_task_without_blobs_merges_after_one_with_them() {
        let dir = tempfile::tempdir().unwrap();
        for world in ["wa", "wb"] {
            let bytes = crate::testing::component_exporting(TWO, world);
            write(dir.path(), packages(&bytes, world, false).unwrap()).unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join("example-two/two.wit")).unwrap();
        assert!(
            text.contains("size: func") && text.contains("twice: func"),
            "{text}"
        );
    }

    #[test]
    fn what_it_cannot_merge_it_refuses_and_leaves_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("example-words/words.wit");
        let refused = |text: &str| {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
            let err = write(dir.path(), packages(&words(), "w", false).unwrap()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadArguments);
            assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "left alone");
            err.to_string()
        };
        let other_version = "package example:words@0.2.0;\n\ninterface count {\n  f: func();\n}\n";
        assert!(refused(other_version).contains("example:words@0.2.0"));
        let by_hand = "package example:words@0.1.0;\ninterface count { f: func(); }\n";
        assert!(refused(by_hand).contains("edited by hand"));
        std::fs::remove_file(&file).unwrap();
        // The package defined by another file of deps (a hand-made link).
        std::fs::write(
            dir.path().join("words.wit"),
            other_version.replace("0.2.0", "0.1.0"),
        )
        .unwrap();
        let err = write(dir.path(), packages(&words(), "w", false).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("already defines example:words@0.1.0"),
            "{err}"
        );
    }

    #[test]
    fn nothing_is_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("cairn-task")).unwrap();
        let bytes = crate::testing::component_exporting(TWO, "wa");
        let written = write(dir.path(), packages(&bytes, "wa", false).unwrap()).unwrap();
        assert_eq!(written[0].package.name, CAIRN_TASK_NAME);
        assert!(!written[0].changed);
        assert!(std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn the_task_wins_over_an_older_definition() {
        let old = "package a:b;\n\ninterface i {\n  record r {\n    x: u32,\n  }\n\n  f: func() -> r;\n}\n";
        let new = "package a:b;\n\ninterface i {\n  record r {\n    x: u32,\n    y: u32,\n  }\n}\n";
        let merged = merge(old, new).unwrap();
        assert!(merged.contains("    y: u32,"), "{merged}");
        assert_eq!(merged.matches("record r").count(), 1, "{merged}");
        assert!(merged.contains("f: func() -> r;"), "{merged}");
    }

    #[test]
    fn bare_functions_cannot_be_imported() {
        let bytes = crate::testing::component_exporting(
            "package example:bare; world bare { export hello: func() -> string; }",
            "bare",
        );
        let err = packages(&bytes, "bare.wasm", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadArguments);
        assert!(err.to_string().contains("export an interface"), "{err}");
    }
}
