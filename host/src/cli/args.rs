//! Flag groups more than one subcommand takes (`--remote…`, the limits of
//! each call), and opening the host `--cache-dir` names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

/// The manifest that names `component` as a task: `manifest` if given,
/// else `./cairn.toml` when `component` is not a file and that exists.
pub fn manifest_for<'a>(component: &Path, manifest: Option<&'a Path>) -> Option<&'a Path> {
    let implicit = Path::new("cairn.toml");
    match manifest {
        Some(m) => Some(m),
        None if !component.is_file() && implicit.is_file() => Some(implicit),
        None => None,
    }
}

/// Opens the host on `--cache-dir`, `$CAIRN_CACHE_DIR` or the user's cache dir.
pub fn open_host(
    cache_dir: Option<PathBuf>,
    limits: cairn_host::Limits,
) -> cairn_host::Result<cairn_host::Host> {
    let dir = cache_dir
        .or_else(cairn_host::Host::default_cache_dir)
        .ok_or_else(|| {
            cairn_host::Error::new(
            cairn_host::ErrorKind::Cache,
            "no cache directory: set --cache-dir or CAIRN_CACHE_DIR (no home directory was found)",
        )
        })?;
    cairn_host::Host::open_with_clock(dir, limits, cairn_host::clock::from_env())
}

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
    /// Whether `--remote-optional` was given.
    pub fn remote_optional(&self) -> bool {
        self.remote_optional
    }

    /// The shared tier asked for, on the command line or in config.toml.
    fn config(
        &self,
        host: &cairn_host::Host,
    ) -> cairn_host::Result<Option<cairn_host::RemoteConfig>> {
        let saved = cairn_host::Config::read(host.cache_dir())?.remote;
        let Some(url) = self
            .remote
            .clone()
            .or(saved.as_ref().map(|r| r.url.clone()))
        else {
            return Ok(None);
        };
        let saved = saved.unwrap_or_default();
        let mut c = cairn_host::RemoteConfig::new(url);
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
        host: &cairn_host::Host,
        adjust: impl FnOnce(&mut cairn_host::RemoteConfig),
    ) -> cairn_host::Result<bool> {
        match self.config(host)? {
            Some(mut c) => {
                adjust(&mut c);
                host.connect(c)
            }
            None => Ok(false),
        }
    }
}

/// What each call may use: `--timeout`, `--max-memory`, `--fuel` (shared by
/// `run` and `worker`).
#[derive(Args, Debug, Default)]
pub struct LimitArgs {
    /// Wall-time limit of each call, e.g. 30s, 2h, 500ms, or `none` [default: 10m]
    #[arg(long, value_name = "TIME", value_parser = parse_timeout)]
    timeout: Option<Timeout>,
    /// Memory limit of each call, e.g. 512MiB [default: 1GiB]
    #[arg(long, value_name = "SIZE", value_parser = cairn_host::units::parse_size)]
    max_memory: Option<u64>,
    /// Fuel (about one unit per wasm instruction) each call may burn [default: unmetered]
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
}

impl LimitArgs {
    /// The limits asked for, the defaults for the rest.
    pub fn limits(&self) -> cairn_host::Limits {
        let mut limits = cairn_host::Limits::default();
        if let Some(Timeout(t)) = self.timeout {
            limits.timeout = t;
        }
        limits.fuel = self.fuel;
        if let Some(m) = self.max_memory {
            // More than the address space is no limit at all.
            limits.max_memory = usize::try_from(m).unwrap_or(usize::MAX);
        }
        limits
    }
}

/// A `--timeout`: a duration, or no limit at all (`None`).
#[derive(Clone, Copy, Debug)]
pub struct Timeout(Option<Duration>);

/// `30s`, `2h`, … or `none`.
fn parse_timeout(text: &str) -> Result<Timeout, String> {
    if text == "none" {
        return Ok(Timeout(None));
    }
    humantime::parse_duration(text)
        .map(|d| Timeout(Some(d)))
        .map_err(|e| format!("{e}; write a time like 30s, 2h, 500ms, or none"))
}
