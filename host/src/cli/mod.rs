//! The command line: clap definitions, exit codes, and dispatch to one file
//! per subcommand. Everything it does is a call into the `cairn` library.
//!
//! Imports go one way: this file uses its children, the subcommand files
//! (`run`, `cache`, `runs`, `inspect`, `remote`) use the helpers below them
//! (`args`, `output`, `fmt`, `progress`; `run` also prints `runs`'
//! explanations), and nothing uses this file or a file above it.

mod args;
mod cache;
mod fmt;
mod inspect;
mod output;
mod progress;
mod remote;
mod run;
mod runs;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

/// Exit code for a task that failed (trapped); nothing was cached.
const EXIT_TASK_FAILED: u8 = 1;
/// Exit code for bad input or an unusable cache.
const EXIT_ERROR: u8 = 2;

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                // The NATS client logs what cairn reports itself, in one line.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,async_nats=off")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(cli.cache_dir, *args),
        Command::Inspect(args) => inspect::inspect(cli.cache_dir, args),
        Command::Cache(args) => cache::cache(cli.cache_dir, args),
        Command::Runs(args) => runs::runs(cli.cache_dir, args),
        Command::Graph(args) => runs::graph(cli.cache_dir, args),
        Command::Explain(args) => runs::explain(cli.cache_dir, args),
        Command::Worker(args) => remote::worker(cli.cache_dir, *args),
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
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(match e.kind() {
                cairn_host::ErrorKind::TaskFailed => EXIT_TASK_FAILED,
                _ => EXIT_ERROR,
            })
        }
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
