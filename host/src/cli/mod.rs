//! The command line: clap definitions, exit codes, and dispatch to one file
//! per subcommand. Everything it does is a call into the `cairn` library.
//!
//! Imports go one way: this file uses its children, the subcommand files
//! (`run`, `cache`, `runs`, `inspect`, `remote`) use the helpers below them
//! (`args`, `output`, `fmt`, `progress`; `run` also prints `runs`'
//! explanations), and nothing uses this file or a file above it.

mod after_component;
mod args;
mod cache;
mod fmt;
mod inspect;
mod output;
mod progress;
mod remote;
mod run;
mod runs;
mod wit;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Run WebAssembly component tasks in a sandbox, and never run the same work twice.
///
/// Every call is keyed by the component's hash, the export, the arguments and
/// the sandbox; a call seen before is answered from the cache without
/// compiling, instantiating or reading anything.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, propagate_version = true)]
struct Cli {
    /// The cache directory [default: $CAIRN_CACHE_DIR, else $XDG_CACHE_HOME/cairn]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(Box<run::RunArgs>),
    Inspect(inspect::InspectArgs),
    Cache(cache::CacheArgs),
    Runs(runs::RunsArgs),
    Graph(runs::GraphArgs),
    Explain(runs::ExplainArgs),
    Worker(Box<remote::WorkerArgs>),
    Wit(wit::WitArgs),
    Completions(CompletionsArgs),
}

/// Print a shell completion script, e.g. `cairn completions bash > /etc/bash_completion.d/cairn`
#[derive(clap::Args, Debug)]
struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    shell: clap_complete::Shell,
}

/// Exit code for a task that failed (trapped); nothing was cached.
const EXIT_TASK_FAILED: u8 = 1;
/// Exit code for bad input or an unusable cache.
const EXIT_ERROR: u8 = 2;
/// Exit code when Ctrl-C (SIGINT) stopped the run: 128 + 2, as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    init_log();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let json = wants_json(&argv);
    let (argv, moved) = after_component::hoist(&Cli::command(), argv);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e, &argv, json),
    };
    interrupt_on_ctrl_c(json);
    let result = match cli.command {
        Command::Run(args) => match run::run(cli.cache_dir, *args, &moved) {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Inspect(args) => inspect::inspect(cli.cache_dir, args),
        Command::Cache(args) => cache::cache(cli.cache_dir, args),
        Command::Runs(args) => runs::runs(cli.cache_dir, args),
        Command::Graph(args) => runs::graph(cli.cache_dir, args),
        Command::Explain(args) => runs::explain(cli.cache_dir, args),
        Command::Worker(args) => remote::worker(cli.cache_dir, *args),
        Command::Wit(args) => wit::wit(args),
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "cairn", &mut script);
            output::print_line(String::from_utf8_lossy(&script).trim_end())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe is how `cairn … | head` ends; not an error.
            if let Some(io) =
                std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>())
            {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            let code = match e.kind() {
                cairn_host::ErrorKind::TaskFailed => EXIT_TASK_FAILED,
                _ => EXIT_ERROR,
            };
            report_error(json, &e.to_string(), e.kind().as_str(), code);
            ExitCode::from(code)
        }
    }
}

/// The log: `CAIRN_LOG`, else `RUST_LOG`, else warnings only; colour only
/// when stderr is a terminal. A bare level in `CAIRN_LOG` (`debug`) is
/// cairn's own events at that level and others' warnings; `RUST_LOG` and
/// any other `CAIRN_LOG` are tracing's filter syntax, as they come.
fn init_log() {
    use std::io::IsTerminal as _;
    let cairn_log = std::env::var("CAIRN_LOG").ok().map(|v| match v.as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => {
            format!("warn,async_nats=off,cairn={v},cairn_host={v}")
        }
        _ => v,
    });
    let filter = cairn_log
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        // The NATS client logs what cairn reports itself, in one line.
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn,async_nats=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}

/// Whether `--json` was given (before any `--`, after which arguments are
/// the task's): errors are then JSON objects too, even a command line
/// clap could not parse.
fn wants_json(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// Prints an error: `error: MESSAGE` on stderr, one line; under `--json`, a
/// JSON object `{"error", "kind", "exit"}` on one line of stdout instead,
/// where the results would have gone.
pub(crate) fn report_error(json: bool, message: &str, kind: &str, code: u8) {
    let message = one_line(message);
    if json {
        let v = serde_json::json!({ "error": message, "kind": kind, "exit": code });
        let _ = writeln!(std::io::stdout(), "{v}");
    } else {
        let _ = writeln!(std::io::stderr(), "error: {message}");
    }
}

/// `text` on one line: line breaks and other control characters escaped.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A command line clap could not parse: help and version print as clap
/// prints them (exit 0); an error becomes one line that says where to look.
fn parse_error(e: &clap::Error, argv: &[std::ffi::OsString], json: bool) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let path = subcommand_path(argv);
    if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
        let message = format!(
            "`{}` needs a command: one of {}; see `{} --help`",
            path.join(" "),
            subcommands(&path).join(", "),
            path.join(" ")
        );
        report_error(json, &message, "usage", EXIT_ERROR);
        return ExitCode::from(EXIT_ERROR);
    }
    let rendered = e.render().to_string();
    let text = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    // clap's message, then its tips; the usage and "For more information"
    // lines are replaced by where to look.
    let mut parts: Vec<String> = Vec::new();
    for block in text.split("\n\n") {
        let block = block.trim();
        if block.is_empty()
            || block.starts_with("Usage:")
            || block.starts_with("For more information")
        {
            continue;
        }
        let lines: Vec<&str> = block.lines().map(str::trim).collect();
        parts.push(lines.join(" "));
    }
    let message = if parts.is_empty() {
        "no command given".to_string()
    } else {
        parts.join("; ")
    };
    let message = format!("{message}; see `{} --help`", path.join(" "));
    report_error(json, &message, "usage", EXIT_ERROR);
    ExitCode::from(EXIT_ERROR)
}

/// `cairn run`, `cairn cache verify`, …: the subcommands named on the
/// command line, for pointing at the right `--help`.
fn subcommand_path(argv: &[std::ffi::OsString]) -> Vec<String> {
    let mut cmd = Cli::command();
    let mut path = vec!["cairn".to_string()];
    for arg in argv.iter().skip(1).filter_map(|a| a.to_str()) {
        let Some(sub) = cmd.find_subcommand(arg).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path
}

/// The subcommands of the command at `path` (`["cairn", "cache"]`).
fn subcommands(path: &[String]) -> Vec<String> {
    let mut cmd = Cli::command();
    for name in path.iter().skip(1) {
        if let Some(sub) = cmd.find_subcommand(name).cloned() {
            cmd = sub;
        }
    }
    cmd.get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect()
}

/// Ctrl-C (SIGINT): stop at once with one line and exit 130. The result of
/// the interrupted call has not been stored: results are stored after the
/// call returns, and the cache is safe against a process that stops at any
/// point (see `tests/all/crash.rs`). What was queued for the cache (results
/// of calls that returned, compiled code) is committed first: a commit
/// takes milliseconds, and a disk that hangs is given 5 s.
fn interrupt_on_ctrl_c(json: bool) {
    let handler = move || {
        cairn_host::Host::flush_all(std::time::Duration::from_secs(5));
        report_error(
            json,
            "interrupted; the interrupted call was not cached",
            "interrupted",
            EXIT_INTERRUPTED,
        );
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        tracing::debug!("cannot handle Ctrl-C: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
