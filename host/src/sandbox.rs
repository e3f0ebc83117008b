//! The deterministic environment every call runs in.
//!
//! Caching is only sound if a task's result depends on its inputs alone, so a
//! call's store gets a WASI context that denies or fixes every source of
//! non-determinism:
//!
//! | what | value |
//! |---|---|
//! | files | none: no preopened directories |
//! | environment variables, arguments | none |
//! | network | none: every socket address and name lookup is denied |
//! | stdin | closed |
//! | stdout, stderr | captured in memory, up to 1 MiB each ([`Limits`]), then writes fail |
//! | wall clock | fixed at 2020-01-01T00:00:00Z ([`FIXED_WALL_CLOCK_SECS`]) |
//! | monotonic clock | starts at 0 and advances 1 µs per read |
//! | random (secure and insecure) | ChaCha12 (pinned by name and by a test of its first outputs) seeded from the call key, so the same call sees the same bytes |
//! | floats | NaNs canonicalised by the engine |
//! | memory, time, fuel, handles | bounded by [`Limits`] |
//!
//! [`SANDBOX_VERSION`] names this table; it is part of every call key through
//! [`Grants::digest`], so changing the environment makes old entries miss
//! rather than answer for a different environment. [`Grants`] add
//! capabilities to a call (directories, environment variables, or real
//! clocks and randomness), each part of the key; an impure or writable grant
//! makes the call uncacheable.
//!
//! This module is the policy, plain data in the bottom layer; the engine
//! enforces it (`engine/sandbox.rs`).

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// The version of the deterministic environment described above.
pub const SANDBOX_VERSION: &str = "cairn-sandbox/1";
/// The fixed wall clock, in seconds since the Unix epoch (2020-01-01T00:00:00Z).
pub const FIXED_WALL_CLOCK_SECS: u64 = 1_577_836_800;

/// The default wall-time limit of one call: long enough for any honest
/// step of a pipeline on one machine, short enough that a guest looping
/// forever is stopped without anyone asking. A deadline costs the epoch
/// check compiled into loops (measured in BENCHMARKS.md, "The default
/// time limit").
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What one call may use. A call that hits a limit fails with an error that
/// names the task and the limit, and nothing is cached.
///
/// Limits are not part of the cache key: they decide whether a call
/// finishes, never what it returns. The defaults:
///
/// * memory: 1 GiB per linear memory
/// * time: 10 minutes per call ([`DEFAULT_TIMEOUT`]; `None` for no deadline)
/// * fuel: not metered
/// * stdout and stderr: 1 MiB each captured; writes past that fail
/// * blob handles held at once: 10,000
/// * bytes of blobs made: 4 GiB
/// * flow nesting: 64 calls deep
/// * tasks executing at once: one per core
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub max_memory: usize,
    /// Wall-time deadline of one call (enforced by epoch interruption, to a
    /// twentieth of the limit, at least 10 ms and at most 1 s), or `None`
    /// for none. A flow's limit counts its own execution: each answer to a
    /// call it made gives it the whole limit again (each call has its own).
    pub timeout: Option<std::time::Duration>,
    /// Fuel (roughly, wasm instructions) one call may burn. Metering slows
    /// execution, so it is off unless set.
    pub fuel: Option<u64>,
    /// Bytes of stdout, and of stderr, captured per call.
    pub max_output: usize,
    /// Blob handles (blobs and writers) a call may hold at once.
    pub max_handles: usize,
    /// Bytes of blobs a call may make (they live in host memory until the
    /// call ends).
    pub max_blob_bytes: usize,
    /// How deep flows may nest.
    pub max_depth: u32,
    /// How many tasks execute at once in one host (0: one per core). A
    /// flow's concurrent calls run in parallel up to this; flows themselves,
    /// which mostly wait for their calls, do not count. At most this many
    /// task stores run at once, so memory stays under `jobs × max_memory`
    /// plus one store per flow in progress.
    pub jobs: usize,
}

/// How many `jobs` means: 0 is one per core.
pub(crate) fn jobs_or_cores(jobs: usize) -> usize {
    match jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_memory: 1 << 30,
            timeout: Some(DEFAULT_TIMEOUT),
            fuel: None,
            max_output: 1 << 20,
            max_handles: 10_000,
            max_blob_bytes: 4 << 30,
            max_depth: 64,
            jobs: 0,
        }
    }
}

/// A host directory made visible to a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the task sees it (`/data`).
    pub guest: String,
    /// Whether the task may write to it. A writable directory makes the call
    /// uncacheable: it always runs and its result is never stored.
    pub writable: bool,
}

/// The capabilities granted to a call, beyond the deterministic environment.
/// None by default. Each grant is part of the call's key: a read-only
/// directory by a Merkle hash of its content (files remembered by `stat`),
/// environment variables by name and value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {
    /// Directories, read-only unless marked writable (cap-std keeps the task
    /// inside each: `..` and symlinks cannot leave it).
    pub dirs: Vec<DirGrant>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Real wall and monotonic clocks and real randomness. An impure call is
    /// uncacheable: it always runs and its result is never stored.
    pub impure: bool,
}

impl Grants {
    /// Whether results of calls with these grants may be cached.
    pub fn cacheable(&self) -> bool {
        !self.impure && self.dirs.iter().all(|d| !d.writable)
    }

    /// Whether nothing is granted.
    pub fn is_empty(&self) -> bool {
        self == &Grants::default()
    }

    /// The digest of the environment and the grants, part of every call key.
    /// `dir_digest` gives the content digest of a granted directory.
    pub fn digest(
        &self,
        dir_digest: impl Fn(&Path) -> crate::Result<Digest>,
    ) -> crate::Result<Digest> {
        let mut h = blake3::Hasher::new();
        let mut field = |b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(SANDBOX_VERSION.as_bytes());
        let mut dirs: Vec<&DirGrant> = self.dirs.iter().collect();
        dirs.sort_by(|a, b| a.guest.cmp(&b.guest));
        for d in dirs {
            field(d.guest.as_bytes());
            field(&[u8::from(d.writable)]);
            field(dir_digest(&d.host)?.as_bytes());
        }
        let mut env: Vec<&(String, String)> = self.env.iter().collect();
        env.sort();
        for (k, v) in env {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        field(&[u8::from(self.impure)]);
        Ok(h.finalize().into())
    }

    /// The grants for people, one line each, sorted; a read-only directory
    /// names the digest of its content (`dir /srv/in -> /in ro 1a2b3c4d5e6f`).
    pub fn describe(
        &self,
        dir_digest: impl Fn(&Path) -> crate::Result<Digest>,
    ) -> crate::Result<Vec<String>> {
        let mut out = Vec::new();
        for d in &self.dirs {
            out.push(if d.writable {
                format!("dir {} -> {} rw", d.host.display(), d.guest)
            } else {
                let content = dir_digest(&d.host)?.short();
                format!("dir {} -> {} ro {content}", d.host.display(), d.guest)
            });
        }
        out.extend(self.env.iter().map(|(k, v)| format!("env {k}={v}")));
        if self.impure {
            out.push("impure".to_string());
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(g: &Grants) -> Digest {
        g.digest(|p| Ok(Digest::of(p.as_os_str().as_encoded_bytes())))
            .unwrap()
    }

    #[test]
    fn every_grant_changes_the_digest() {
        let none = Grants::default();
        assert_eq!(digest(&none), digest(&Grants::default()));
        let mut env = Grants::default();
        env.env.push(("K".into(), "V".into()));
        let mut env2 = env.clone();
        env2.env[0].1 = "W".into();
        let mut dir = Grants::default();
        dir.dirs.push(DirGrant {
            host: "/a".into(),
            guest: "/data".into(),
            writable: false,
        });
        let mut other_dir = dir.clone();
        other_dir.dirs[0].host = "/b".into();
        let impure = Grants {
            impure: true,
            ..Grants::default()
        };
        let all = [&none, &env, &env2, &dir, &other_dir, &impure].map(digest);
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(!impure.cacheable() && none.cacheable() && dir.cacheable());
    }
}
