//! `cairn cache`: see and steer the cache.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::args::{open_host, RemoteArgs};
use super::fmt;
use super::output::print_line;

/// See and steer the cache: stats, list, show, remove, export, collect, audit.
#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// The cache at a glance: entries, sizes, hits, time saved
    Stats {
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// List stored results
    Ls(LsArgs),
    /// Everything about one entry: its key manifest, result, usage and output
    Show {
        /// The key, or a unique prefix of at least 4 hex digits
        key: String,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Remove entries (and the objects only they used); input files are never touched
    Rm(RmArgs),
    /// Write a stored result to a file, usable outside cairn
    Export {
        /// The key, or a unique prefix
        key: String,
        /// The file (or, for raw results holding several blobs, the directory) to write
        #[arg(long, value_name = "PATH")]
        to: PathBuf,
        /// raw: the bytes themselves (blob, string, list<u8>); json; wave
        #[arg(long, value_enum, default_value_t = Format::Raw)]
        format: Format,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Remove expired and old entries, and evict down to a size budget
    Gc(GcArgs),
    /// Publish entries to the shared tier (those stored before it was used,
    /// or while it was down); entries it already holds are left alone
    Push(PushArgs),
    /// Show or set the cache's settings (kept in CACHE_DIR/config.toml)
    Config {
        /// A size budget applied after every `cairn run` (e.g. 10GiB); `none` removes it
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// The shared tier `cairn run` uses by default (nats://HOST:PORT); `none` removes it
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        /// With --remote: go on with the local cache when the server cannot be reached
        #[arg(long, requires = "remote")]
        remote_optional: bool,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Check stored hashes; optionally run entries again to catch non-deterministic tasks
    Verify {
        /// Check only N entries, chosen at random
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
        /// Run the checked entries again (without the cache) and compare results
        #[arg(long)]
        reexecute: bool,
        /// With --remote: result blobs left in the shared tier (taken
        /// lazily) count as present
        #[command(flatten)]
        remote: RemoteArgs,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Raw,
    Json,
    Wave,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SortBy {
    /// Newest first
    Created,
    /// Largest first
    Size,
    /// Most hits first
    Hits,
    /// Longest execution first
    Run,
    /// Most recently used first
    Used,
}

#[derive(Args, Debug)]
struct LsArgs {
    /// Only entries of tasks whose name contains NAME
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// Only entries of this export (`load` or `cairn:ml/steps#load`; a suffix matches)
    #[arg(long)]
    export: Option<String>,
    /// Only entries stored longer ago than AGE (e.g. 2h, 30d)
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    older_than: Option<Duration>,
    /// Only entries stored within AGE
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    newer_than: Option<Duration>,
    /// Only entries of at least SIZE (e.g. 1MiB)
    #[arg(long, value_name = "SIZE", value_parser = cairn_host::units::parse_size)]
    min_size: Option<u64>,
    /// Order of the list
    #[arg(long, value_enum, default_value_t = SortBy::Created)]
    sort: SortBy,
    /// Show at most N entries
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// One JSON object per line
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// Keys (or unique prefixes) to remove
    keys: Vec<String>,
    /// One JSON object
    #[arg(long)]
    json: bool,
    /// Remove every entry of tasks whose name contains NAME
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// Remove every entry not used for AGE (e.g. 30d)
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    older_than: Option<Duration>,
}

#[derive(Args, Debug)]
struct PushArgs {
    /// Keys (or unique prefixes) to publish
    #[arg(required_unless_present = "all")]
    keys: Vec<String>,
    /// One JSON object
    #[arg(long)]
    json: bool,
    /// Publish every unexpired entry
    #[arg(long, conflicts_with = "keys")]
    all: bool,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Args, Debug)]
struct GcArgs {
    /// Evict until results and compiled code take at most SIZE [default: config.toml's max_size]
    #[arg(long, value_name = "SIZE", value_parser = cairn_host::units::parse_size)]
    max_size: Option<u64>,
    /// Remove entries and compiled code not used for AGE (e.g. 30d)
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration)]
    older_than: Option<Duration>,
    /// Say what would go, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Leave the index file as it is (by default it is compacted afterwards,
    /// returning the free pages of replaced versions to the disk)
    #[arg(long)]
    no_compact: bool,
    /// One JSON object
    #[arg(long)]
    json: bool,
}

pub fn cache(cache_dir: Option<PathBuf>, args: CacheArgs) -> cairn_host::Result<()> {
    let host = open_host(cache_dir, cairn_host::Limits::default())?;
    match args.command {
        CacheCommand::Stats { json } => stats(&host, json),
        CacheCommand::Ls(a) => ls(&host, &a),
        CacheCommand::Show { key, json } => show(&host, &key, json),
        CacheCommand::Rm(a) => rm(&host, &a),
        CacheCommand::Export {
            key,
            to,
            format,
            json,
        } => {
            let key = host.resolve_key(&key)?;
            let format = match format {
                Format::Raw => cairn_host::ExportFormat::Raw,
                Format::Json => cairn_host::ExportFormat::Json,
                Format::Wave => cairn_host::ExportFormat::Wave,
            };
            host.export(&key, &to, format)?;
            if json {
                return json_line(&serde_json::json!({ "wrote": to, "key": key.to_hex() }));
            }
            eprintln!("cairn: wrote {} from entry {}", to.display(), key.short());
            Ok(())
        }
        CacheCommand::Gc(a) => gc(host, &a),
        CacheCommand::Push(a) => push(&host, &a),
        CacheCommand::Config {
            max_size,
            remote,
            remote_optional,
            json,
        } => config(&host, max_size, remote, remote_optional, json),
        CacheCommand::Verify {
            sample,
            reexecute,
            remote,
            json,
        } => {
            // An audit of the local cache goes on without the server.
            remote.connect(&host, |c| c.optional = true)?;
            verify(&host, sample, reexecute, json)
        }
    }
}

fn json_line(v: &impl serde::Serialize) -> cairn_host::Result<()> {
    print_line(&serde_json::to_string(v).expect("serializable"))
}

fn stats(host: &cairn_host::Host, json: bool) -> cairn_host::Result<()> {
    let s = host.stats()?;
    if json {
        return json_line(&s);
    }
    let r = &s.recent;
    let budget = s.budget.map_or(
        "none (cairn cache config --max-size 10GiB)".into(),
        fmt::size,
    );
    let rows = [
        ("Cache", s.dir.display().to_string()),
        ("Entries", format!("{} ({} expired)", s.entries, s.expired)),
        ("Values", fmt::size(s.value_bytes)),
        ("Result blobs", fmt::size(s.blob_bytes)),
        ("Captured output", fmt::size(s.output_bytes)),
        (
            "Compiled code",
            format!("{} ({} artefacts)", fmt::size(s.compiled.1), s.compiled.0),
        ),
        (
            "Compiled functions",
            format!(
                "{} ({} shared by components, in the index)",
                fmt::size(s.compiled_functions.1),
                s.compiled_functions.0
            ),
        ),
        (
            "On disk",
            format!(
                "{} index + {} objects",
                fmt::size(s.index_bytes),
                fmt::size(s.object_file_bytes)
            ),
        ),
        ("Size budget", budget),
        ("Hits (all time)", s.hits.to_string()),
        ("Time saved (all time)", fmt::micros(s.saved_us)),
        (
            "Recent runs",
            format!(
                "{} runs, {} calls: {} hits, {} executed, {} saved",
                r.runs,
                r.calls,
                r.hits,
                r.executed,
                fmt::micros(r.saved_us)
            ),
        ),
        ("Input files remembered", s.files_remembered.to_string()),
    ];
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    fmt::table(&rows).iter().try_for_each(|l| print_line(l))
}

fn ls(host: &cairn_host::Host, a: &LsArgs) -> cairn_host::Result<()> {
    let now = fmt::now_ms();
    let mut entries: Vec<cairn_host::Entry> = host
        .entries()?
        .into_iter()
        .filter(|e| matches(e, a.component.as_deref(), a.export.as_deref()))
        .filter(|e| a.older_than.is_none_or(|age| e.created_ms <= ago(now, age)))
        .filter(|e| a.newer_than.is_none_or(|age| e.created_ms > ago(now, age)))
        .filter(|e| a.min_size.is_none_or(|min| e.bytes >= min))
        .collect();
    entries.sort_by_key(|e| {
        std::cmp::Reverse(match a.sort {
            SortBy::Created => e.created_ms,
            SortBy::Size => e.bytes,
            SortBy::Hits => e.hits,
            SortBy::Run => e.run_us,
            SortBy::Used => e.last_used_ms(),
        })
    });
    entries.truncate(a.limit.unwrap_or(usize::MAX));
    if a.json {
        return entries.iter().try_for_each(json_line);
    }
    let mut rows = vec![["KEY", "TASK", "EXPORT", "SIZE", "RUN", "HITS", "STORED"]
        .map(String::from)
        .to_vec()];
    for e in &entries {
        rows.push(vec![
            e.key.short(),
            fmt::stem(e.component()).to_string(),
            e.export().to_string(),
            fmt::size(e.bytes),
            fmt::micros(e.run_us),
            e.hits.to_string(),
            if e.expired_at(now) {
                "expired".to_string()
            } else {
                fmt::ago(e.created_ms, now)
            },
        ]);
    }
    fmt::table(&rows).iter().try_for_each(|l| print_line(l))?;
    eprintln!(
        "cairn: {} entries, {}",
        entries.len(),
        fmt::size(entries.iter().map(|e| e.bytes).sum())
    );
    Ok(())
}

fn ago(now: u64, age: Duration) -> u64 {
    now.saturating_sub(age.as_millis() as u64)
}

fn matches(e: &cairn_host::Entry, component: Option<&str>, export: Option<&str>) -> bool {
    component.is_none_or(|c| e.component().contains(c))
        && export.is_none_or(|x| e.export() == x || e.export().ends_with(&format!("#{x}")))
}

fn show(host: &cairn_host::Host, key: &str, json: bool) -> cairn_host::Result<()> {
    let e = host.entry(key)?;
    let value = host.stored_value(&e.key);
    if json {
        let mut v = serde_json::to_value(&e).expect("serializable");
        v["result"] = match &value {
            Ok(Some(v)) => cairn_host::to_json(v),
            _ => serde_json::Value::Null,
        };
        return json_line(&v);
    }
    let now = fmt::now_ms();
    let mut rows: Vec<Vec<String>> = vec![vec!["key".into(), e.key.to_hex()]];
    let mut row = |k: &str, v: String| rows.push(vec![k.to_string(), v]);
    if let Some(m) = &e.manifest {
        row("task", format!("{} ({})", m.component, m.signature));
        row("export", m.export.clone());
        row("closure", m.closure.to_hex());
        for a in &m.args {
            row(
                &format!("arg {}", a.name),
                format!("{}  [{}]", a.shown, a.digest.short()),
            );
        }
        row(
            "grants",
            if m.grants.is_empty() {
                "none".into()
            } else {
                m.grants.join(", ")
            },
        );
    }
    row(
        "result",
        match &value {
            Ok(Some(v)) => {
                let text = v.to_wave();
                let short = cairn_host::entry::shorten(&text, 300);
                if short.len() < text.len() {
                    format!("{short} (cairn cache export KEY --format wave for all)")
                } else {
                    short
                }
            }
            Ok(None) => "(none)".into(),
            Err(err) => format!("unreadable: {err}"),
        },
    );
    row("size", fmt::size(e.bytes));
    row(
        "stored",
        format!(
            "{} ({})",
            fmt::timestamp(e.created_ms),
            fmt::ago(e.created_ms, now)
        ),
    );
    if let Some(t) = e.expires_ms {
        let state = if t <= now { "expired" } else { "expires" };
        row(state, fmt::timestamp(t));
    }
    row("execution", fmt::micros(e.run_us));
    row(
        "hits",
        match e.last_hit_ms {
            Some(t) => format!("{} (last {})", e.hits, fmt::ago(t, now)),
            None => "0".into(),
        },
    );
    fmt::table(&rows).iter().try_for_each(|l| print_line(l))?;
    for (name, out) in [("stdout", e.stdout), ("stderr", e.stderr)] {
        if let Some((_, len)) = out {
            print_line(&format!("--- {name} ({})", fmt::size(len)))?;
            print_line(host.captured_output(&e, name == "stdout")?.trim_end())?;
        }
    }
    Ok(())
}

fn rm(host: &cairn_host::Host, a: &RmArgs) -> cairn_host::Result<()> {
    let mut keys = a
        .keys
        .iter()
        .map(|k| host.resolve_key(k))
        .collect::<cairn_host::Result<Vec<_>>>()?;
    if a.component.is_some() || a.older_than.is_some() {
        let now = fmt::now_ms();
        keys.extend(
            host.entries()?
                .into_iter()
                .filter(|e| matches(e, a.component.as_deref(), None))
                .filter(|e| {
                    a.older_than
                        .is_none_or(|age| e.last_used_ms() <= ago(now, age))
                })
                .map(|e| e.key),
        );
    }
    if keys.is_empty() && a.keys.is_empty() && a.component.is_none() && a.older_than.is_none() {
        return Err(cairn_host::Error::new(
            cairn_host::ErrorKind::BadArguments,
            "give keys, --component NAME or --older-than AGE (or use `cairn cache gc`)",
        ));
    }
    let (removed, freed) = host.remove(&keys)?;
    if a.json {
        return json_line(&serde_json::json!({ "removed": removed, "freed": freed }));
    }
    print_line(&format!(
        "removed {removed} entries, freed {}",
        fmt::size(freed)
    ))
}

fn push(host: &cairn_host::Host, a: &PushArgs) -> cairn_host::Result<()> {
    // Publishing is all this command does: never without the server.
    if !a.remote.connect(host, |c| c.optional = false)? {
        return Err(cairn_host::Error::new(
            cairn_host::ErrorKind::BadArguments,
            "publish to where? give --remote nats://HOST:PORT (or set it with `cairn cache config --remote`)",
        ));
    }
    let keys = if a.all {
        host.entries()?.into_iter().map(|e| e.key).collect()
    } else {
        a.keys
            .iter()
            .map(|k| host.resolve_key(k))
            .collect::<cairn_host::Result<Vec<_>>>()?
    };
    let started = std::time::Instant::now();
    let p = host.publish(&keys)?;
    if a.json {
        return json_line(&serde_json::json!({
            "published": p.published,
            "already": p.already,
            "skipped": p.skipped,
            "ms": started.elapsed().as_secs_f64() * 1e3,
        }));
    }
    print_line(&format!(
        "published {} entries ({} already shared, {} expired) in {}",
        p.published,
        p.already,
        p.skipped,
        fmt::duration(started.elapsed())
    ))
}

fn gc(host: cairn_host::Host, a: &GcArgs) -> cairn_host::Result<()> {
    let mut opts = cairn_host::GcOptions::default();
    opts.max_size = a
        .max_size
        .or(cairn_host::Config::read(host.cache_dir())?.max_size);
    opts.older_than = a.older_than;
    opts.dry_run = a.dry_run;
    let started = std::time::Instant::now();
    let r = host.gc(&opts)?;
    let compacted = if a.dry_run || a.no_compact {
        None
    } else {
        let c = host.compact()?;
        if c.is_none() {
            eprintln!(
                "cairn: warning: the index was not compacted: another cairn was writing to it (run `cairn cache gc` again later)"
            );
        }
        c
    };
    if a.json {
        let mut v = serde_json::to_value(&r).expect("serializable");
        v["index_before"] = compacted.map(|c| c.before).into();
        v["index_after"] = compacted.map(|c| c.after).into();
        return json_line(&v);
    }
    let index = compacted.map_or(String::new(), |c| {
        format!("; index {} → {}", fmt::size(c.before), fmt::size(c.after))
    });
    let verb = if a.dry_run { "would remove" } else { "removed" };
    print_line(&format!(
        "{verb} {} entries ({} expired), {} compiled artefacts and {} compiled functions; kept {} entries; {} → {}; freed {} on disk{index} in {}",
        r.removed.len(),
        r.expired,
        r.compiled_removed,
        r.functions_removed,
        r.kept,
        fmt::size(r.size_before),
        fmt::size(r.size_after),
        fmt::size(r.freed),
        fmt::duration(started.elapsed()),
    ))
}

fn config(
    host: &cairn_host::Host,
    max_size: Option<String>,
    remote: Option<String>,
    remote_optional: bool,
    json: bool,
) -> cairn_host::Result<()> {
    let mut c = cairn_host::Config::read(host.cache_dir())?;
    let changed = max_size.is_some() || remote.is_some();
    if let Some(url) = remote {
        c.remote = (url != "none").then(|| {
            let mut r = c.remote.take().unwrap_or_default();
            r.url = url;
            r.optional = remote_optional;
            r
        });
    }
    if let Some(text) = max_size {
        c.max_size = match text.as_str() {
            "none" => None,
            t => Some(cairn_host::units::parse_size(t).map_err(|e| {
                cairn_host::Error::new(
                    cairn_host::ErrorKind::BadArguments,
                    format!("--max-size {t}: {e} (write e.g. 10GiB)"),
                )
            })?),
        };
    }
    if changed {
        c.write(host.cache_dir())?;
    }
    if json {
        return json_line(&serde_json::json!({
            "max_size": c.max_size,
            "remote": c.remote.as_ref().map(|r| &r.url),
            "remote_optional": c.remote.as_ref().is_some_and(|r| r.optional),
        }));
    }
    print_line(&format!(
        "max_size = {}",
        c.max_size.map_or("none".into(), fmt::size)
    ))?;
    print_line(&match &c.remote {
        Some(r) if r.optional => format!("remote = {} (optional)", r.url),
        Some(r) => format!("remote = {}", r.url),
        None => "remote = none".into(),
    })
}

fn verify(
    host: &cairn_host::Host,
    sample: Option<usize>,
    reexecute: bool,
    json: bool,
) -> cairn_host::Result<()> {
    let mut opts = cairn_host::VerifyOptions::default();
    opts.sample = sample;
    opts.reexecute = reexecute;
    let a = host.verify_with(&opts)?;
    let hex = |keys: &[cairn_host::Digest]| keys.iter().map(|k| k.to_hex()).collect::<Vec<_>>();
    if json {
        json_line(&serde_json::json!({
            "checked": a.checked,
            "damaged": hex(&a.damaged),
            "damaged_arguments": hex(&a.damaged_arguments),
            "damaged_compiled": hex(&a.damaged_compiled),
            "reexecuted": a.reexecuted,
            "differing": hex(&a.differing),
            "skipped": a.skipped.iter().map(|(k, why)| serde_json::json!({"key": k.to_hex(), "why": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        for key in &a.damaged {
            print_line(&format!("damaged {key}"))?;
        }
        for key in &a.damaged_arguments {
            print_line(&format!("damaged arguments {key} (its result still answers; `cache show` and `explain` cannot show what it was called with)"))?;
        }
        for key in &a.damaged_compiled {
            print_line(&format!(
                "damaged compiled artefact {key} (compiled again when next run)"
            ))?;
        }
        for key in &a.differing {
            print_line(&format!("differs {key} (a non-deterministic task?)"))?;
        }
        for (key, why) in &a.skipped {
            print_line(&format!("skipped {} ({why})", key.short()))?;
        }
        let mut summary = format!(
            "{} entries checked in {}, {} damaged, {} with damaged arguments, {} damaged compiled artefacts",
            a.checked,
            host.cache_dir().display(),
            a.damaged.len(),
            a.damaged_arguments.len(),
            a.damaged_compiled.len(),
        );
        if reexecute {
            summary += &format!(
                "; {} re-executed, {} differ, {} skipped",
                a.reexecuted,
                a.differing.len(),
                a.skipped.len()
            );
        }
        print_line(&summary)?;
    }
    let mut problems = Vec::new();
    if !a.damaged.is_empty() {
        problems.push(format!(
            "{} damaged entries (misses now, repaired when next called)",
            a.damaged.len()
        ));
    }
    if !a.damaged_arguments.is_empty() {
        problems.push(format!(
            "{} entries with damaged arguments (remove them with `cairn cache rm KEY`; the next call stores them again)",
            a.damaged_arguments.len()
        ));
    }
    if !a.damaged_compiled.is_empty() {
        problems.push(format!(
            "{} damaged compiled artefacts (compiled again when next run)",
            a.damaged_compiled.len()
        ));
    }
    if !a.differing.is_empty() {
        problems.push(format!(
            "{} differing entries (remove them with `cairn cache rm` and make their tasks deterministic)",
            a.differing.len()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(cairn_host::Error::new(
        cairn_host::ErrorKind::Cache,
        problems.join("; "),
    ))
}
