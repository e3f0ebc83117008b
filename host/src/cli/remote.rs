//! `cairn worker`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::{open_host, LimitArgs, RemoteArgs};

/// Run the calls hosts dispatch (`cairn run --remote URL --dispatch`): pull
/// them from the shared tier's work queue, execute, publish, acknowledge
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// The worker's name, shown to the hosts whose calls it runs [default: HOSTNAME-PID]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Calls run at once [default: one per core]
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    jobs: usize,
    /// Exit after N calls [default: run until stopped]
    #[arg(long, value_name = "N")]
    max_calls: Option<usize>,
    #[command(flatten)]
    limits: LimitArgs,
    /// How long a worker may go silent before its call is given to another
    /// (it reports progress at a third of this); set when the work queue is
    /// first joined [default: 30s]
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    ack_wait: Option<Duration>,
    /// Report each call as one JSON object per line on stdout (event,
    /// worker, key, export, ms or error)
    #[arg(long)]
    json: bool,
}

pub fn worker(cache_dir: Option<PathBuf>, args: WorkerArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, args.limits.limits())?;
    if args.remote.remote_optional() {
        return Err(cairn_host::Error::new(
            cairn_host::ErrorKind::BadArguments,
            "a worker cannot do without its server; drop --remote-optional",
        ));
    }
    let ack_wait = args.ack_wait;
    let connected = args.remote.connect(&host, |c| {
        // Not even when config.toml says so: a worker is nothing without it.
        c.optional = false;
        if let Some(wait) = ack_wait {
            c.ack_wait = wait;
        }
    })?;
    if !connected {
        return Err(cairn_host::Error::new(
            cairn_host::ErrorKind::BadArguments,
            "a worker needs a shared tier: give --remote nats://HOST:PORT",
        ));
    }
    let name = args
        .name
        .unwrap_or_else(cairn_host::WorkerOptions::default_name);
    let mut opts = cairn_host::WorkerOptions::new(name.clone());
    opts.jobs = args.jobs;
    opts.max_calls = args.max_calls;
    opts.json = args.json;
    if args.json {
        let v = serde_json::json!({"event": "serving", "worker": name, "cache": host.cache_dir()});
        super::output::print_line(&v.to_string())?;
    } else {
        eprintln!(
            "cairn: worker {name} serving calls from the shared tier (cache {})",
            host.cache_dir().display()
        );
    }
    host.serve(&opts)?;
    host.flush()
}
