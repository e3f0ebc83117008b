//! `cairn runs`, `cairn graph`, `cairn explain`: the run history.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::args::open_host;
use super::fmt;
use super::output::print_line;

/// List recorded runs, newest first
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// Show at most N runs
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// One JSON object per run, with its calls
    #[arg(long)]
    json: bool,
}

/// Print the call tree of a run (the latest by default) as Mermaid or DOT,
/// or write it as a self-contained HTML page
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// The run's id (see `cairn runs`) [default: the latest]
    run: Option<u64>,
    /// What to print
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
    /// Write an HTML page (hits and misses coloured, timings, keys on hover) instead
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

/// Say why each call of a run (the latest by default) missed
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The run's id (see `cairn runs`) [default: the latest]
    run: Option<u64>,
    /// One JSON object per call: component, export, cache, why
    #[arg(long)]
    json: bool,
}

pub fn runs(cache_dir: Option<PathBuf>, args: RunsArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, cairn_host::Limits::default())?;
    let runs = host.runs(args.limit)?;
    if args.json {
        return runs
            .iter()
            .try_for_each(|r| print_line(&serde_json::to_string(r).expect("serializable")));
    }
    let now = fmt::now_ms();
    let mut rows = vec![[
        "RUN", "STARTED", "TIME", "CALLS", "HITS", "EXECUTED", "SAVED", "ROOT",
    ]
    .map(String::from)
    .to_vec()];
    for r in &runs {
        let root = r.root().map_or("-".to_string(), |c| {
            format!("{} {}", fmt::stem(&c.component), c.export)
        });
        let root = match r.roots().count() {
            0 | 1 => root,
            n => format!("{root} and {} more", n - 1),
        };
        let root = match &r.error {
            Some(_) => format!("{root} (failed)"),
            None => root,
        };
        rows.push(vec![
            r.id.to_string(),
            fmt::ago(r.started_ms, now),
            fmt::micros(r.elapsed_us),
            r.calls.len().to_string(),
            r.hits().to_string(),
            r.executed().to_string(),
            fmt::micros(r.saved_us()),
            root,
        ]);
    }
    fmt::table(&rows).iter().try_for_each(|l| print_line(l))
}

pub fn graph(cache_dir: Option<PathBuf>, args: GraphArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, cairn_host::Limits::default())?;
    let run = host.run(args.run)?;
    if let Some(path) = args.html {
        std::fs::write(&path, cairn_host::graph::html(&run)).map_err(|e| {
            cairn_host::Error::new(
                cairn_host::ErrorKind::Io,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        eprintln!(
            "cairn: wrote {} (run {}, {} calls); open it in a browser",
            path.display(),
            run.id,
            run.calls.len()
        );
        return Ok(());
    }
    let text = match args.format {
        GraphFormat::Mermaid => cairn_host::graph::mermaid(&run),
        GraphFormat::Dot => cairn_host::graph::dot(&run),
    };
    print_line(text.trim_end())
}

pub fn explain(cache_dir: Option<PathBuf>, args: ExplainArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, cairn_host::Limits::default())?;
    let run = host.run(args.run)?;
    let why = host.explain_run(&run)?;
    if args.json {
        for (c, why) in run.calls.iter().zip(&why) {
            let v = serde_json::json!({
                "component": c.component,
                "export": c.export,
                "cache": c.cache.as_str(),
                "why": why.as_ref().map(|w| w.to_string()),
            });
            print_line(&v.to_string())?;
        }
        return Ok(());
    }
    let calls = run.calls.iter().zip(&why).map(|(c, why)| {
        (
            c.component.as_str(),
            c.export.as_str(),
            c.cache,
            why.as_ref(),
        )
    });
    for line in explanations(calls) {
        print_line(&line)?;
    }
    Ok(())
}

/// One call of a run: component, export, status and why it missed.
pub type Explained<'a> = (
    &'a str,
    &'a str,
    cairn_host::CacheStatus,
    Option<&'a cairn_host::explain::Explanation>,
);

/// For each call that did not hit, a line saying why.
pub fn explanations<'a>(calls: impl Iterator<Item = Explained<'a>>) -> Vec<String> {
    let mut out = Vec::new();
    for (component, export, cache, why) in calls {
        if cache == cairn_host::CacheStatus::Hit {
            continue;
        }
        let why = match (cache, why) {
            (cairn_host::CacheStatus::Uncacheable, _) => {
                "uncacheable (impure, or a writable directory)".to_string()
            }
            (_, Some(why)) => why.to_string(),
            (_, None) => "not explained (run with --explain, or --refresh / --no-cache was given)"
                .to_string(),
        };
        out.push(format!(
            "{} {} {export}: {why}",
            cache.as_str(),
            fmt::stem(component)
        ));
    }
    if out.is_empty() {
        out.push("every call was a hit".to_string());
    }
    out
}
