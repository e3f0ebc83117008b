//! The host side of `cairn:task/blobs`: blob handles inside a call's store.

use std::sync::{Arc, OnceLock};

use wasmtime::component::Resource;

use crate::engine::BlobReader;
use crate::sandbox::Sandbox;
use crate::value::Blob;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "cairn:task/task",
    imports: { default: trappable },
    with: {
        "cairn:task/blobs.blob": BlobHandle,
        "cairn:task/blobs.blob-writer": BlobWriter,
    },
});

pub(crate) use self::cairn::task::blobs::add_to_linker as add_blobs_to_linker;
use self::cairn::task::blobs::{Host, HostBlob, HostBlobWriter};

/// Most bytes one `read` returns.
pub const MAX_READ: u64 = 16 << 20;

/// Bytes a blob handle reads from.
pub(crate) enum Bytes {
    Memory(Arc<[u8]>),
    Mapped(memmap2::Mmap),
}

impl Bytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Memory(b) => b,
            Bytes::Mapped(m) => m,
        }
    }
}

/// A blob held by a call's store. Its bytes are opened on the first `read`,
/// so a flow that only passes a blob on never reads it.
pub struct BlobHandle {
    pub(crate) blob: Blob,
    bytes: OnceLock<Bytes>,
}

impl BlobHandle {
    /// A handle over `blob`.
    pub(crate) fn new(blob: Blob) -> BlobHandle {
        BlobHandle {
            blob,
            bytes: OnceLock::new(),
        }
    }

    /// A handle over bytes a task made.
    fn made(bytes: Vec<u8>) -> BlobHandle {
        let bytes: Arc<[u8]> = bytes.into();
        BlobHandle {
            blob: Blob::from_bytes(bytes.clone()),
            bytes: OnceLock::from(Bytes::Memory(bytes)),
        }
    }
}

/// A blob being written by a task.
#[derive(Default)]
pub struct BlobWriter {
    bytes: Vec<u8>,
}

/// Opens a file-backed blob for reading (memory-mapped, so pages are read
/// only as the task touches them).
pub(crate) fn map_file(path: &std::path::Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the map is read-only; cairn's contract for `@file` inputs is
    // that they are not modified while a run uses them (as with any build
    // tool's inputs). A concurrent writer changes what the task reads, never
    // memory safety of the host beyond that.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::Mapped(map))
}

impl Sandbox {
    /// Puts a blob handle in the table, within [`crate::Limits::max_handles`].
    fn push_handle<T: Send + 'static>(&mut self, handle: T) -> wasmtime::Result<Resource<T>> {
        let max = self.scope.inner.limits.max_handles;
        if self.handles >= max {
            wasmtime::bail!("holds more than {max} blob handles at once (the handle limit)");
        }
        self.handles += 1;
        Ok(self.table.push(handle)?)
    }

    fn drop_handle<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        self.handles = self.handles.saturating_sub(1);
        Ok(self.table.delete(handle)?)
    }
}

impl Host for Sandbox {}

impl HostBlob for Sandbox {
    fn new(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Resource<BlobHandle>> {
        self.push_handle(BlobHandle::made(bytes))
    }

    fn hash(&mut self, this: Resource<BlobHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.blob.hash().to_hex())
    }

    fn len(&mut self, this: Resource<BlobHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.blob.len())
    }

    fn read(
        &mut self,
        this: Resource<BlobHandle>,
        offset: u64,
        len: u64,
    ) -> wasmtime::Result<Vec<u8>> {
        let handle = self.table.get(&this)?;
        let bytes = match handle.bytes.get() {
            Some(b) => b,
            None => {
                let opened = self.scope.inner.open(&handle.blob)?;
                handle.bytes.get_or_init(|| opened)
            }
        }
        .as_slice();
        let start = offset.min(bytes.len() as u64) as usize;
        let end = offset
            .saturating_add(len.min(MAX_READ))
            .min(bytes.len() as u64) as usize;
        Ok(bytes[start..end].to_vec())
    }

    fn drop(&mut self, this: Resource<BlobHandle>) -> wasmtime::Result<()> {
        self.drop_handle(this).map(drop)
    }
}

impl HostBlobWriter for Sandbox {
    fn new(&mut self) -> wasmtime::Result<Resource<BlobWriter>> {
        self.push_handle(BlobWriter::default())
    }

    fn write(&mut self, this: Resource<BlobWriter>, bytes: Vec<u8>) -> wasmtime::Result<()> {
        self.table.get_mut(&this)?.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn finish(&mut self, writer: Resource<BlobWriter>) -> wasmtime::Result<Resource<BlobHandle>> {
        let w = self.drop_handle(writer)?;
        self.push_handle(BlobHandle::made(w.bytes))
    }

    fn drop(&mut self, this: Resource<BlobWriter>) -> wasmtime::Result<()> {
        self.drop_handle(this).map(drop)
    }
}
