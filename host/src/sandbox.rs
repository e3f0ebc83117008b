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
//! | random (secure and insecure) | ChaCha seeded from the call key, so the same call sees the same bytes |
//! | floats | NaNs canonicalised by the engine |
//! | memory, time, fuel, handles | bounded by [`Limits`] |
//!
//! [`SANDBOX_VERSION`] names this table; it is part of every call key through
//! [`Grants::digest`], so changing the environment makes old entries miss
//! rather than answer for a different environment.

use std::time::Duration;

use rand::SeedableRng;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use crate::digest::Digest;
use crate::flow::Scope;

/// The version of the deterministic environment described above.
pub const SANDBOX_VERSION: &str = "cairn-sandbox/1";
/// The fixed wall clock, in seconds since the Unix epoch (2020-01-01T00:00:00Z).
pub const FIXED_WALL_CLOCK_SECS: u64 = 1_577_836_800;

/// What one call may use. A call that hits a limit fails with an error that
/// names the task and the limit, and nothing is cached.
///
/// Limits are not part of the cache key: they decide whether a call
/// finishes, never what it returns. The defaults:
///
/// * memory: 1 GiB per linear memory
/// * time: no deadline
/// * fuel: not metered
/// * stdout and stderr: 1 MiB each captured; writes past that fail
/// * blob handles held at once: 10,000
/// * flow nesting: 64 calls deep
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest linear memory, in bytes.
    pub max_memory: usize,
    /// Wall-time deadline of one call (enforced by epoch interruption, to
    /// about 10 ms). A flow's deadline keeps running while its calls run.
    pub timeout: Option<std::time::Duration>,
    /// Fuel (roughly, wasm instructions) one call may burn. Metering slows
    /// execution, so it is off unless set.
    pub fuel: Option<u64>,
    /// Bytes of stdout, and of stderr, captured per call.
    pub max_output: usize,
    /// Blob handles (blobs and writers) a call may hold at once.
    pub max_handles: usize,
    /// How deep flows may nest.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_memory: 1 << 30,
            timeout: None,
            fuel: None,
            max_output: 1 << 20,
            max_handles: 10_000,
            max_depth: 64,
        }
    }
}

/// The capabilities granted to a call. There are none yet beyond the
/// deterministic environment; every future grant (a directory, an
/// environment variable) joins the digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {}

impl Grants {
    /// The digest of the environment and the grants, part of every call key.
    pub fn digest(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(SANDBOX_VERSION.as_bytes());
        h.finalize().into()
    }
}

struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_WALL_CLOCK_SECS)
    }
}

/// A monotonic clock that moves only when read: deterministic, and a guest
/// waiting for time to pass still sees it pass.
struct SteppingClock(std::sync::atomic::AtomicU64);

impl HostMonotonicClock for SteppingClock {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.0
            .fetch_add(1_000, std::sync::atomic::Ordering::Relaxed)
    }
}

fn rng(seed: &Digest, purpose: &str) -> rand::rngs::StdRng {
    let mut h = blake3::Hasher::new_derive_key("cairn sandbox random");
    h.update(seed.as_bytes());
    h.update(purpose.as_bytes());
    rand::rngs::StdRng::from_seed(*h.finalize().as_bytes())
}

/// The data of one call's wasmtime store.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// The run this call belongs to (for the calls a flow makes, and blobs).
    pub(crate) scope: Scope,
    /// Blob handles created so far (see [`Limits::max_handles`]).
    pub(crate) handles: usize,
}

impl Sandbox {
    /// A fresh deterministic environment for the call whose key is `seed`.
    pub(crate) fn new(seed: &Digest, scope: Scope) -> Sandbox {
        let limits = scope.inner.limits.clone();
        let stdout = MemoryOutputPipe::new(limits.max_output);
        let stderr = MemoryOutputPipe::new(limits.max_output);
        let insecure_seed =
            u128::from_le_bytes(seed.as_bytes()[..16].try_into().expect("32-byte digest"));
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(SteppingClock(0.into()))
            .secure_random(rng(seed, "secure"))
            .insecure_random(rng(seed, "insecure"))
            .insecure_random_seed(insecure_seed)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Sandbox {
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory)
                .trap_on_grow_failure(true)
                .build(),
            stdout,
            stderr,
            scope,
            handles: 0,
        }
    }

    /// What the call wrote to stdout and stderr.
    pub(crate) fn output(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.stdout.contents().to_vec(),
            self.stderr.contents().to_vec(),
        )
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_depends_on_the_key_only() {
        use rand::Rng as _;
        let a = rng(&Digest::of(b"k"), "secure").next_u64();
        let b = rng(&Digest::of(b"k"), "secure").next_u64();
        let c = rng(&Digest::of(b"j"), "secure").next_u64();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn grants_digest_names_the_environment_version() {
        assert_eq!(Grants::default().digest(), Grants::default().digest());
        assert_eq!(
            Grants::default().digest(),
            Digest::of(SANDBOX_VERSION.as_bytes())
        );
    }
}
