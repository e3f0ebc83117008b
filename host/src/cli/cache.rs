//! `cairn cache`: look after the cache itself.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Inspect and look after the cache.
#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// Check that every stored result is present and matches its hash
    Verify,
}

pub fn cache(cache_dir: Option<PathBuf>, args: CacheArgs) -> cairn::Result<()> {
    let host = super::open_host(cache_dir, cairn::Limits::default())?;
    match args.command {
        CacheCommand::Verify => {
            let v = host.verify()?;
            for key in &v.damaged {
                super::print_line(&format!("damaged {key}"))?;
            }
            super::print_line(&format!(
                "{} entries checked in {}, {} damaged",
                v.entries,
                host.cache_dir().display(),
                v.damaged.len()
            ))?;
            if v.damaged.is_empty() {
                Ok(())
            } else {
                Err(cairn::Error::new(
                    cairn::ErrorKind::Cache,
                    format!(
                        "{} damaged entries: each is a miss and is repaired when next called",
                        v.damaged.len()
                    ),
                ))
            }
        }
    }
}
