//! `--remote` and its connection options (shared by `run` and `worker`), and
//! `cairn worker`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// How to reach the shared tier.
#[derive(Args, Debug, Default)]
pub struct RemoteArgs {
    /// Share results through NATS JetStream at URL (nats://HOST:PORT or
    /// tls://HOST:PORT) [default: config.toml's [remote] url]
    #[arg(long, value_name = "URL", env = "CAIRN_REMOTE")]
    remote: Option<String>,
    /// Go on with the local cache only, with a warning, when the server
    /// cannot be reached (at start or later) instead of failing
    #[arg(long)]
    remote_optional: bool,
    /// A NATS credentials file (JWT and nkey seed)
    #[arg(long, value_name = "FILE")]
    remote_creds: Option<PathBuf>,
    /// A file holding an nkey seed
    #[arg(long, value_name = "FILE")]
    remote_nkey: Option<PathBuf>,
    /// A token to authenticate with
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CAIRN_REMOTE_TOKEN",
        hide_env_values = true
    )]
    remote_token: Option<String>,
    /// A CA certificate (PEM) to verify the server with; requires TLS
    #[arg(long, value_name = "FILE")]
    remote_ca: Option<PathBuf>,
    /// A client certificate (PEM) for mutual TLS, with --remote-key
    #[arg(long, value_name = "FILE", requires = "remote_key")]
    remote_cert: Option<PathBuf>,
    /// The client certificate's key (PEM)
    #[arg(long, value_name = "FILE", requires = "remote_cert")]
    remote_key: Option<PathBuf>,
    /// How long to wait for a result another machine or a worker is
    /// computing [default: 1h]
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    remote_wait: Option<Duration>,
}

impl RemoteArgs {
    /// The shared tier asked for, on the command line or in config.toml.
    fn config(&self, host: &cairn::Host) -> cairn::Result<Option<cairn::RemoteConfig>> {
        let saved = cairn::Config::read(host.cache_dir())?.remote;
        let Some(url) = self
            .remote
            .clone()
            .or(saved.as_ref().map(|r| r.url.clone()))
        else {
            return Ok(None);
        };
        let saved = saved.unwrap_or_default();
        let mut c = cairn::RemoteConfig::new(url);
        c.optional = self.remote_optional || (self.remote.is_none() && saved.optional);
        c.creds = self.remote_creds.clone().or(saved.creds);
        c.nkey = self.remote_nkey.clone().or(saved.nkey);
        c.token = self.remote_token.clone();
        c.tls_ca = self.remote_ca.clone().or(saved.tls_ca);
        c.tls_client = match (&self.remote_cert, &self.remote_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            _ => saved.tls_cert.zip(saved.tls_key),
        };
        if let Some(wait) = self.remote_wait {
            c.wait = wait;
        }
        Ok(Some(c))
    }

    /// Connects `host` if a shared tier is asked for (with `adjust`
    /// applied); whether it is connected.
    pub fn connect(
        &self,
        host: &cairn::Host,
        adjust: impl FnOnce(&mut cairn::RemoteConfig),
    ) -> cairn::Result<bool> {
        match self.config(host)? {
            Some(mut c) => {
                adjust(&mut c);
                host.connect(c)
            }
            None => Ok(false),
        }
    }
}

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
    limits: super::run::LimitArgs,
    /// How long a worker may go silent before its call is given to another
    /// (it reports progress at a third of this); set when the work queue is
    /// first joined [default: 30s]
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
    ack_wait: Option<Duration>,
}

pub fn worker(cache_dir: Option<PathBuf>, args: WorkerArgs) -> cairn::Result<()> {
    let host = super::open_host(cache_dir, args.limits.limits())?;
    if args.remote.remote_optional {
        return Err(cairn::Error::new(
            cairn::ErrorKind::BadArguments,
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
        return Err(cairn::Error::new(
            cairn::ErrorKind::BadArguments,
            "a worker needs a shared tier: give --remote nats://HOST:PORT",
        ));
    }
    let name = args.name.unwrap_or_else(cairn::WorkerOptions::default_name);
    let mut opts = cairn::WorkerOptions::new(name.clone());
    opts.jobs = args.jobs;
    opts.max_calls = args.max_calls;
    eprintln!(
        "cairn: worker {name} serving calls from the shared tier (cache {})",
        host.cache_dir().display()
    );
    host.serve(&opts)?;
    host.flush()
}
