//! The host side of `cairn:task/blobs`: blob handles inside a call's store.

use std::sync::{Arc, OnceLock};

use wasmtime::component::Resource;

use super::sandbox::Sandbox;
use crate::bytes::Bytes;
use crate::value::Blob;

wasmtime::component::bindgen!({
    path: "wit",
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

impl Sandbox {
    /// Puts a blob handle in the table, within [`crate::Limits::max_handles`].
    pub(crate) fn push_handle<T: Send + 'static>(
        &mut self,
        handle: T,
    ) -> wasmtime::Result<Resource<T>> {
        let max = self.max_handles;
        if self.handles >= max {
            wasmtime::bail!("holds more than {max} blob handles at once (the handle limit)");
        }
        self.handles += 1;
        Ok(self.table.push(handle)?)
    }

    /// Counts `n` more bytes of blobs made by this call, within
    /// [`crate::Limits::max_blob_bytes`].
    fn spend_blob_bytes(&mut self, n: usize) -> wasmtime::Result<()> {
        let max = self.max_blob_bytes;
        self.blob_bytes = self.blob_bytes.saturating_add(n);
        if self.blob_bytes > max {
            wasmtime::bail!("made more than {} MiB of blobs (the blob limit)", max >> 20);
        }
        Ok(())
    }

    fn drop_handle<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        self.handles = self.handles.saturating_sub(1);
        Ok(self.table.delete(handle)?)
    }
}

impl Host for Sandbox {}

impl HostBlob for Sandbox {
    fn new(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Resource<BlobHandle>> {
        self.spend_blob_bytes(bytes.len())?;
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
                let opened = self.imports.open_blob(&handle.blob)?;
                handle.bytes.get_or_init(|| opened)
            }
        };
        let read = bytes.read(offset, len.min(MAX_READ)).map_err(|e| {
            wasmtime::format_err!(
                "cannot read blob {}: {e} (was its file changed during the run?)",
                handle.blob.hash()
            )
        })?;
        self.imports.blob_read(read.len() as u64);
        Ok(read)
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
        self.spend_blob_bytes(bytes.len())?;
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
