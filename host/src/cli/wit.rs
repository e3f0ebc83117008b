//! `cairn wit`: the WIT a flow needs to import a task's interfaces, written
//! into the flow's `wit/deps/`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::print_line;

/// Write the WIT of a task's interfaces into a flow's wit/deps, read from the task's component
///
/// A flow in its own crate then adds `import <interface>;` to its world
/// (the lines this prints) and builds: no WIT copied by hand.
#[derive(Args, Debug)]
pub struct WitArgs {
    /// The task's component (.wasm), or a task name of the manifest
    component: PathBuf,
    /// The directory of WIT dependencies to write into
    #[arg(long, value_name = "DIR", default_value = "wit/deps")]
    out: PathBuf,
    /// Declare the functions `async func`: the view of a flow that awaits several calls at once
    #[arg(long = "async")]
    concurrent: bool,
    /// The manifest naming the project's tasks [default: ./cairn.toml, when COMPONENT is not a file]
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

pub fn wit(args: WitArgs) -> cairn_host::Result<()> {
    let path = component_path(&args.component, args.manifest.as_deref())?;
    let packages = cairn_host::wit_deps::packages_of_file(&path, args.concurrent)?;
    let written = cairn_host::wit_deps::write(&args.out, packages)?;
    if args.json {
        let files: Vec<_> = written
            .iter()
            .map(|w| {
                serde_json::json!({
                    "package": w.package.name,
                    "path": w.path,
                    "changed": w.changed,
                    "imports": w.package.imports,
                })
            })
            .collect();
        return print_line(&serde_json::json!({ "written": files }).to_string());
    }
    for w in &written {
        let state = if w.changed { "wrote" } else { "unchanged" };
        print_line(&format!(
            "{state:>10}  {}  ({})",
            w.path.display(),
            w.package.name
        ))?;
    }
    let imports: Vec<&String> = written.iter().flat_map(|w| &w.package.imports).collect();
    print_line("a flow imports them with, in its world:")?;
    for i in imports {
        print_line(&format!("  import {i};"))?;
    }
    Ok(())
}

/// `component` itself, or the path of the manifest's task of that name.
fn component_path(component: &Path, manifest: Option<&Path>) -> cairn_host::Result<PathBuf> {
    match super::args::manifest_for(component, manifest) {
        Some(manifest) => {
            let name = component.to_string_lossy();
            Ok(cairn_host::Manifest::read(manifest)?
                .task(&name)?
                .path
                .clone())
        }
        None => Ok(component.to_path_buf()),
    }
}
