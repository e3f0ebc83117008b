//! `cairn inspect`: a component's hash, exports and imports.

use std::path::PathBuf;

use clap::Args;

use super::args::open_host;
use super::output::print_line;

/// Print a component's hash and its exports with their WIT signatures.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The component (.wasm)
    component: PathBuf,
    /// Print one JSON object instead of text (it lists every export, each
    /// with `internal`)
    #[arg(long)]
    json: bool,
    /// Also list the functions a language runtime adds to every component
    /// it builds (componentize-py's `exports#init`), marked as such
    #[arg(long)]
    all: bool,
}

pub fn inspect(cache_dir: Option<PathBuf>, args: InspectArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, cairn_host::Limits::default())?;
    let task = host.load(&args.component)?;
    let signature = |e: &cairn_host::Export| match &e.ty {
        Ok(ty) => ty.to_string(),
        Err(why) => format!("(cannot be called: {why})"),
    };
    if args.json {
        let exports: Vec<_> = task
            .exports()
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.path(),
                    "signature": signature(e),
                    "callable": e.ty.is_ok(),
                    "internal": e.runtime_internal().is_some(),
                    "runtime": e.runtime_internal(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "component": task.hash().to_hex(),
            "exports": exports,
            "imports": task.imports(),
            "unprovided": task.unprovided_imports(),
        });
        return print_line(&out.to_string());
    }
    print_line(&format!("component {}  {}", task.hash(), task.name()))?;
    print_line("exports:")?;
    for e in task.exports() {
        match e.runtime_internal() {
            None => print_line(&format!("  {}: {}", e.path(), signature(e)))?,
            Some(runtime) if args.all => print_line(&format!(
                "  {}: {}  ({runtime} internal)",
                e.path(),
                signature(e)
            ))?,
            Some(_) => {}
        }
    }
    let hidden: Vec<String> = task
        .exports()
        .iter()
        .filter_map(|e| Some(format!("{} ({})", e.path(), e.runtime_internal()?)))
        .collect();
    if !hidden.is_empty() && !args.all {
        print_line(&format!(
            "  hidden, a language runtime's own: {} (--all lists them)",
            hidden.join(", ")
        ))?;
    }
    if !task.imports().is_empty() {
        print_line("imports:")?;
        let unprovided = task.unprovided_imports();
        for i in task.imports() {
            if unprovided.contains(&i.as_str()) {
                print_line(&format!(
                    "  {i}  (not provided by cairn: rebuild without it)"
                ))?;
            } else {
                print_line(&format!("  {i}"))?;
            }
        }
    }
    Ok(())
}
