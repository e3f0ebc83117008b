//! A task's stdout and stderr: captured in memory up to the output limit,
//! and a trap the moment a write crosses it, so a task writing without end
//! stops there instead of running on against a closed stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// An in-memory pipe of `capacity` bytes whose overflow traps the guest.
/// The trap's message is inspected by nobody: the engine names the limit
/// from the buffer being full (see `failed` in `engine/mod.rs`).
#[derive(Clone)]
pub(crate) struct CappedPipe {
    inner: MemoryOutputPipe,
    capacity: usize,
    /// Bytes written so far, shared by the clones: asking the pipe copies
    /// its whole buffer, which made many small writes quadratic.
    written: Arc<AtomicUsize>,
}

impl CappedPipe {
    /// A pipe keeping at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> CappedPipe {
        CappedPipe {
            inner: MemoryOutputPipe::new(capacity),
            capacity,
            written: Arc::default(),
        }
    }

    /// What was written.
    pub(crate) fn contents(&self) -> Bytes {
        self.inner.contents()
    }

    /// Room left before the limit.
    fn room(&self) -> usize {
        self.capacity
            .saturating_sub(self.written.load(Ordering::Relaxed))
    }

    fn crossed() -> StreamError {
        StreamError::trap("the output limit was reached")
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let room = self.room();
        if bytes.len() > room {
            // Keep what fits (the buffer is then full, which names the
            // limit), then stop the task.
            let _ = self.inner.write(bytes.slice(..room));
            self.written.fetch_add(room, Ordering::Relaxed);
            return Err(Self::crossed());
        }
        let len = bytes.len();
        self.inner.write(bytes)?;
        self.written.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let room = self.room();
        if room == 0 {
            return Err(Self::crossed());
        }
        Ok(room)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // WASIp3 streams are not linked; the plain pipe's (short writes at
        // the limit) would do if they were.
        Box::new(self.inner.clone())
    }
}
