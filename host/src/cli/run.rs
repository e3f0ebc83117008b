//! `cairn run`: call one export, from the cache when possible.

use std::path::{Path, PathBuf};

use cairn_host::{CacheMode, CallArgs, CallOptions};
use clap::Args;

use super::args::{open_host, LimitArgs, RemoteArgs};
use super::output::Lines;
use super::progress::Progress;

/// Call an export of a component or of a manifest's task; print its result in WAVE.
///
/// Arguments go after the component and export, by parameter name
/// (`--name Ada --count 3`, values in WAVE, strings may be bare, blobs as
/// `@path`), or as WAVE calls with --invoke (repeatable) or --batch FILE,
/// which run in parallel and print one result per line. cairn's options go before
/// the component; --json, --no-cache, --refresh, --with and --out are also
/// understood after it, up to a `--` after which every argument is the task's.
///
/// A flow's imports are bound to the components given with --with, or to
/// the tasks of a manifest (cairn.toml) when a task name is given instead of
/// a file.
///
/// Examples:
///   cairn run hello.wasm greet --name Ada --excited true
///   cairn run --invoke 'greet("Ada", true)' hello.wasm
///   cairn run --invoke 'greet("Ada", true)' --invoke 'greet("Bo", false)' hello.wasm
///   cairn run --json words.wasm top --text @book.txt --n 10
///   cairn run pipeline.wasm --with load.wasm --with train.wasm --data @x.csv
///   cairn run --manifest cairn.toml pipeline --data @x.csv
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// Call as a WAVE expression, e.g. 'greet("Ada", true)'; repeat it to make
    /// several calls, run in parallel
    #[arg(long, value_name = "CALL")]
    invoke: Vec<String>,
    /// Make one call per line of FILE, each a WAVE expression like --invoke
    /// (blank lines and lines starting with # are skipped), run in parallel
    #[arg(long, value_name = "FILE")]
    batch: Option<PathBuf>,
    /// Tasks executed at once: a flow's concurrent calls, and several
    /// --invoke or --batch calls [default: one per core]
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    jobs: usize,
    /// Print one JSON object per call (one line each): result, cache, key, executed, hits, calls, …
    #[arg(long)]
    json: bool,
    /// Print a string result as its text (a report, a document), not as a quoted WAVE string
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// Run without reading or writing the cache
    #[arg(long, conflicts_with = "refresh")]
    no_cache: bool,
    /// Run even if the result is cached, and replace it
    #[arg(long)]
    refresh: bool,
    /// A component to bind a flow's imports to (repeatable)
    #[arg(long = "with", value_name = "COMPONENT")]
    with: Vec<PathBuf>,
    /// The manifest naming the project's tasks [default: ./cairn.toml, when
    /// TASK is not a file]
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Write the blobs of the result to files in DIR, named after where they
    /// are in the result (`result.ok`, `result.model`, …)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// Grant a host directory, read-only: HOST::GUEST (or HOST, seen at the
    /// same path); HOST::GUEST:rw makes it writable and the call uncacheable
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse_dir)]
    dirs: Vec<cairn_host::DirGrant>,
    /// Grant an environment variable (part of the key); a bare NAME copies
    /// the value this shell has
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// Give the task real clocks and randomness; it always runs and is never cached
    #[arg(long)]
    impure: bool,
    /// Show what each call wrote to stdout and stderr, prefixed with its task,
    /// as each call finishes (on a hit, what the run that produced it wrote)
    #[arg(long, short)]
    verbose: bool,
    /// For each call that did not hit, say why: what differs from the nearest
    /// earlier entry (component, argument, grant), or that it expired
    #[arg(long)]
    explain: bool,
    /// Treat results stored longer ago than TTL as expired, e.g. 2h, 30min
    #[arg(long, value_name = "TTL", value_parser = humantime::parse_duration)]
    ttl: Option<std::time::Duration>,
    #[command(flatten)]
    remote: RemoteArgs,
    /// With a shared tier: send task calls that miss to `cairn worker`s
    /// instead of running them here (flows still run here; their calls go)
    #[arg(long)]
    dispatch: bool,
    /// The component (.wasm), or a task name of the manifest
    #[arg(value_name = "COMPONENT|TASK")]
    component: PathBuf,
    /// The export, then `--param value` pairs; the export may be omitted when
    /// there is only one
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "EXPORT] [ARGS"
    )]
    rest: Vec<String>,
}

/// What follows the component: the export and `--name value` pairs
/// (cairn's own options there were moved before the component by
/// `after_component`).
#[derive(Debug, Default, PartialEq)]
struct Rest {
    export: Option<String>,
    pairs: Vec<(String, Option<String>)>,
}

/// Splits `[EXPORT] [--name value]…`. A `--flag` followed by another
/// `--flag` or nothing is bare (`None`): `true` for a bool parameter, an
/// error for any other.
fn split_rest(rest: &[String]) -> cairn_host::Result<Rest> {
    let mut out = Rest::default();
    let mut items = rest.iter().peekable();
    out.export = items.next_if(|s| !s.starts_with("--")).cloned();
    let mut task_only = false;
    while let Some(item) = items.next() {
        if item == "--" && !task_only {
            task_only = true;
            continue;
        }
        let Some(name) = item.strip_prefix("--") else {
            return Err(cairn_host::Error::new(
                cairn_host::ErrorKind::BadArguments,
                format!("unexpected `{item}`: arguments are `--name value` pairs after the export"),
            ));
        };
        match name.split_once('=') {
            Some((n, v)) => out.pairs.push((n.to_string(), Some(v.to_string()))),
            None => {
                let value = items.next_if(|s| !s.starts_with("--")).cloned();
                out.pairs.push((name.to_string(), value));
            }
        }
    }
    Ok(out)
}

/// Exit code of a run whose results were computed and kept locally, but
/// could not be published to the shared tier (`cairn cache push` later).
pub const EXIT_UNPUBLISHED: u8 = 3;

/// Runs `cairn run`; `moved` names cairn's options that were given after
/// the component. Returns the exit code of a run that printed its results:
/// 0, or [`EXIT_UNPUBLISHED`].
pub fn run(cache_dir: Option<PathBuf>, args: RunArgs, moved: &[String]) -> cairn_host::Result<u8> {
    let Rest { export, pairs } = split_rest(&args.rest)?;
    let out_dir = args.out;
    let json = args.json;
    let raw = args.raw;
    let no_cache = args.no_cache;
    let refresh = args.refresh;
    let mut invokes = args.invoke;
    if let Some(batch) = &args.batch {
        let text = std::fs::read_to_string(batch).map_err(|e| {
            cairn_host::Error::new(
                cairn_host::ErrorKind::Io,
                format!("cannot read --batch {}: {e}", batch.display()),
            )
        })?;
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        invokes.extend(lines.map(str::to_string));
    }
    let calls: Vec<CallArgs> = match (invokes.is_empty(), pairs.is_empty() && export.is_none()) {
        (true, _) => vec![CallArgs::Named(pairs)],
        (false, true) => invokes.into_iter().map(CallArgs::Invoke).collect(),
        (false, false) => {
            return Err(cairn_host::Error::new(
                cairn_host::ErrorKind::BadArguments,
                "--invoke and --batch name the export and its arguments; give nothing after the component",
            ))
        }
    };
    let mut limits = args.limits.limits();
    limits.jobs = args.jobs;
    let host = open_host(cache_dir, limits)?;
    let connected = args.remote.connect(&host, |_| {})?;
    if args.dispatch && !connected {
        eprintln!("warning: --dispatch needs a shared tier (--remote); running calls here");
    }
    let pool: Vec<PathBuf> = args.with;
    let progress = std::sync::Arc::new(Progress::new(json, args.verbose, host.io_meter()));
    progress.status("loading and hashing inputs");
    let task = load_task(&host, &args.component, args.manifest.as_deref(), &pool)?;
    if matches!(calls.as_slice(), [CallArgs::Named(_)]) {
        ambiguous(&task, export.as_deref(), moved)?;
    }
    let parsed = calls
        .iter()
        .map(|c| host.parse_args(&task, export.as_deref(), c))
        .collect::<cairn_host::Result<Vec<_>>>()?;
    // A command (`wasi:cli/run`) runs as `wasmtime run` runs it: its own
    // stdout and stderr are its output, and its exit status is ours.
    let command = !json && parsed.iter().all(|(e, _)| is_command(e));
    if command {
        progress.quiet_output();
    }
    let mut opts = CallOptions::default();
    opts.cache = match (no_cache, refresh) {
        (true, _) => CacheMode::Off,
        (_, true) => CacheMode::Refresh,
        _ => CacheMode::Use,
    };
    opts.replay_output = args.verbose || command;
    opts.grants.dirs = args.dirs;
    opts.grants.env = args.envs;
    opts.grants.impure = args.impure;
    opts.ttl = args.ttl;
    // Explaining costs a look at earlier entries per miss: only when asked
    // (`cairn explain` works it out later from the recorded run).
    opts.explain = args.explain;
    opts.record_run = true;
    opts.dispatch = args.dispatch;
    opts.observer = Some(progress.clone());
    let outcomes = match parsed.as_slice() {
        [(export, values)] => vec![host.call_with(&task, export, values, &opts)],
        _ => host.call_all(&task, &parsed, &opts, args.jobs),
    };
    progress.finish();
    host.flush()?;
    let mut first_error = None;
    let mut command_failed = false;
    let mut totals = Totals::default();
    let mut lines = Lines::new();
    for ((export, _), out) in parsed.iter().zip(outcomes) {
        let out = match out {
            Ok(out) => out,
            Err(e) if parsed.len() > 1 => {
                if json {
                    let v = serde_json::json!({
                        "error": e.to_string(), "kind": e.kind().as_str(), "export": export,
                    });
                    lines.line(&v.to_string())?;
                } else {
                    lines.flush()?;
                    eprintln!("error: {export}: {e}");
                }
                first_error.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        if args.explain && !json {
            lines.flush()?;
            let calls = out.report.calls.iter().map(|c| {
                (
                    c.component.as_str(),
                    c.export.as_str(),
                    c.cache,
                    c.explanation.as_ref(),
                )
            });
            for line in super::runs::explanations(calls) {
                eprintln!("cairn: {line}");
            }
        }
        if let (Some(dir), Some(value)) = (&out_dir, &out.value) {
            lines.flush()?;
            for (path, len) in host.write_blobs(value, dir)? {
                eprintln!("cairn: wrote {} ({len} bytes)", path.display());
            }
        }
        totals.add(&out.report);
        if command {
            lines.flush()?;
            let status = pass_through(&out)?;
            command_failed |= status;
        } else if json {
            lines.line(&report_json(&host, &task, export, &out).to_string())?;
        } else if let Some(value) = &out.value {
            match value {
                cairn_host::Value::String(text) if raw => {
                    lines.line(text.trim_end_matches('\n'))?
                }
                _ => lines.line(&value.to_wave())?,
            }
        }
    }
    lines.flush()?;
    drop(lines);
    if !json && (!command || args.verbose) {
        eprintln!("cairn: {}", totals.summary());
    }
    if let Some(gc) = host.apply_budget()? {
        if !gc.removed.is_empty() && !json {
            eprintln!(
                "cairn: size budget: evicted {} entries, freed {}",
                gc.removed.len(),
                super::fmt::size(gc.freed)
            );
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let code = unpublished(&host, json);
    Ok(if command_failed && code == 0 {
        EXIT_COMMAND_FAILED
    } else {
        code
    })
}

/// Exit code of a command (`wasi:cli/run`) whose `run` returned `err`, as
/// `wasmtime run` exits.
const EXIT_COMMAND_FAILED: u8 = 1;

/// Whether `export` is a command's entry point, `wasi:cli/run@…#run`.
fn is_command(export: &str) -> bool {
    export.starts_with("wasi:cli/run@") && export.ends_with("#run")
}

/// Writes what a command wrote (on a hit, what the run that produced it
/// wrote) to our stdout and stderr; whether it failed (`run` returned `err`).
fn pass_through(out: &cairn_host::Outcome) -> cairn_host::Result<bool> {
    use std::io::Write as _;
    let top = out.report.calls.iter().find(|c| c.depth == 0);
    if let Some(call) = top {
        let written = std::io::stdout()
            .write_all(&call.stdout)
            .and_then(|()| std::io::stdout().flush())
            .and_then(|()| std::io::stderr().write_all(&call.stderr));
        written.map_err(|e| {
            cairn_host::Error::new(
                cairn_host::ErrorKind::Io,
                format!("cannot write output: {e}"),
            )
            .with_source(e)
        })?;
    }
    Ok(matches!(out.value, Some(cairn_host::Value::Result(Err(_)))))
}

/// Warns, in one line, when results were kept locally because publishing
/// them failed; the exit code that says so.
fn unpublished(host: &cairn_host::Host, json: bool) -> u8 {
    let failed = host.unpublished();
    let Some((key, why)) = failed.first() else {
        return 0;
    };
    let msg = format!(
        "the result was computed and kept in the local cache, but publishing it to the shared tier failed ({why}); publish it later with `cairn cache push --all` (first unpublished key {})",
        key.short()
    );
    if json {
        let v = serde_json::json!({ "warning": msg, "kind": "unpublished", "keys": failed.iter().map(|(k, _)| k.to_hex()).collect::<Vec<_>>() });
        eprintln!("{v}");
    } else {
        eprintln!("warning: {msg}");
    }
    EXIT_UNPUBLISHED
}

/// Fails when one of cairn's options given after the component is also a
/// parameter of `export`: which was meant cannot be told.
fn ambiguous(
    task: &cairn_host::Task,
    export: Option<&str>,
    moved: &[String],
) -> cairn_host::Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    let found = task.export(export)?;
    let Ok(ty) = &found.ty else {
        return Ok(());
    };
    let export = found.path();
    for (param, _) in &ty.params {
        if let Some(m) = moved
            .iter()
            .find(|m| **m == *param || param.replace('-', "_") == **m)
        {
            return Err(cairn_host::Error::new(
                cairn_host::ErrorKind::BadArguments,
                format!("`--{m}` after the component is both cairn's option and a parameter of `{export}`: put cairn's before the component, or the task's after `--`"),
            ));
        }
    }
    Ok(())
}

/// What the calls of one `cairn run` did, summed.
#[derive(Default)]
struct Totals {
    calls: usize,
    hits: u32,
    executed: u32,
    saved: std::time::Duration,
    key: Option<cairn_host::Digest>,
    /// Hits answered by the shared tier.
    remote: usize,
    /// Calls executed by workers.
    dispatched: usize,
}

impl Totals {
    fn add(&mut self, r: &cairn_host::Report) {
        self.calls += r.calls.len();
        self.hits += r.hits;
        self.executed += r.executed;
        self.saved += saved(r);
        self.key = Some(r.key);
        self.remote += r.calls.iter().filter(|c| c.remote).count();
        self.dispatched += r.calls.iter().filter(|c| c.worker.is_some()).count();
    }

    /// `6 calls: 1 hit, 5 executed, 2.24 s saved; key 561ffcafab2c`, with
    /// `(1 from the shared tier)` and `(5 on workers)` when there were any.
    fn summary(&self) -> String {
        let saved = if self.saved.is_zero() {
            String::new()
        } else {
            format!(", {} saved", super::fmt::duration(self.saved))
        };
        let key = self
            .key
            .map(|k| format!("; key {}", k.short()))
            .unwrap_or_default();
        let remote = match self.remote {
            0 => String::new(),
            n => format!(" ({n} from the shared tier)"),
        };
        let dispatched = match self.dispatched {
            0 => String::new(),
            n => format!(" ({n} on workers)"),
        };
        format!(
            "{} call{}: {} hit{}{remote}, {} executed{dispatched}{saved}{key}",
            self.calls,
            if self.calls == 1 { "" } else { "s" },
            self.hits,
            if self.hits == 1 { "" } else { "s" },
            self.executed,
        )
    }
}

/// Execution time the hits of a run saved.
fn saved(r: &cairn_host::Report) -> std::time::Duration {
    r.calls
        .iter()
        .filter(|c| c.cache == cairn_host::CacheStatus::Hit)
        .map(|c| c.run)
        .sum()
}

/// One call's `--json` object.
fn report_json(
    host: &cairn_host::Host,
    task: &cairn_host::Task,
    export: &str,
    out: &cairn_host::Outcome,
) -> serde_json::Value {
    let r = &out.report;
    let calls: Vec<_> = r
        .calls
        .iter()
        .map(|c| {
            serde_json::json!({
                "component": c.component,
                "export": c.export,
                "key": c.key.to_hex(),
                "cache": c.cache.as_str(),
                "start_ms": c.start.as_secs_f64() * 1e3,
                "ms": c.elapsed.as_secs_f64() * 1e3,
                "depth": c.depth,
                "why": c.explanation.as_ref().map(|e| e.to_string()),
                "remote": c.remote,
                "worker": c.worker,
            })
        })
        .collect();
    serde_json::json!({
        "result": out.value.as_ref().map(cairn_host::Value::to_wave),
        "cache": r.cache.as_str(),
        "key": r.key.to_hex(),
        "executed": r.executed,
        "hits": r.hits,
        "stored": r.stored,
        "elapsed_ms": r.elapsed.as_secs_f64() * 1e3,
        "run_ms": r.run.as_secs_f64() * 1e3,
        "saved_ms": saved(r).as_secs_f64() * 1e3,
        "component": task.hash().to_hex(),
        "closure": task.closure().to_hex(),
        "export": export,
        "bytes_hashed": host.bytes_hashed(),
        "calls": calls,
    })
}

/// `HOST::GUEST`, `HOST::GUEST:rw`, or `HOST` (seen at the same path), as
/// `wasmtime run --dir` takes it.
fn parse_dir(text: &str) -> Result<cairn_host::DirGrant, String> {
    let (host, guest) = text.split_once("::").unwrap_or((text, text));
    let (guest, writable) = match guest.strip_suffix(":rw") {
        Some(g) => (g, true),
        None => (guest, false),
    };
    if !Path::new(host).is_dir() {
        return Err(format!("{host} is not a directory"));
    }
    Ok(cairn_host::DirGrant {
        host: host.into(),
        guest: guest.to_string(),
        writable,
    })
}

/// `NAME=VALUE`, or `NAME` for the value this process has (as `wasmtime run
/// --env` takes it).
fn parse_env(text: &str) -> Result<(String, String), String> {
    let (k, v) = match text.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => {
            let v = std::env::var(text).map_err(|_| {
                format!("`{text}` is not set here: give NAME=VALUE, or set {text} first")
            })?;
            (text.to_string(), v)
        }
    };
    if k.is_empty() || k.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{k}` is not an environment variable's name"));
    }
    Ok((k, v))
}

/// The task to run: a component file (its imports bound to `--with`
/// components), or a task of the manifest.
fn load_task(
    host: &cairn_host::Host,
    component: &Path,
    manifest: Option<&Path>,
    with: &[PathBuf],
) -> cairn_host::Result<cairn_host::Task> {
    if let Some(path) = super::args::manifest_for(component, manifest) {
        let name = component.to_string_lossy();
        return host.load_from_manifest(&cairn_host::Manifest::read(path)?, &name);
    }
    let task = host.load(component)?;
    let pool = with
        .iter()
        .map(|p| {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(host.load(p)?.named(name))
        })
        .collect::<cairn_host::Result<Vec<_>>>()?;
    host.bind(&task, &pool, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn export_then_pairs() {
        let r = split_rest(&strings(&["greet", "--name", "Ada", "--excited", "--n=3"])).unwrap();
        assert_eq!(r.export.as_deref(), Some("greet"));
        assert_eq!(
            r.pairs,
            vec![
                ("name".into(), Some("Ada".into())),
                ("excited".into(), None),
                ("n".into(), Some("3".into()))
            ]
        );
        let r = split_rest(&strings(&["--name", "Ada"])).unwrap();
        assert_eq!((r.export, r.pairs.len()), (None, 1));
        assert!(split_rest(&strings(&["greet", "stray"])).is_err());
    }

    #[test]
    fn after_a_double_dash_every_flag_is_the_tasks() {
        let r = split_rest(&strings(&["f", "--", "--json", "yes"])).unwrap();
        assert_eq!(r.pairs, vec![("json".into(), Some("yes".into()))]);
    }
}
