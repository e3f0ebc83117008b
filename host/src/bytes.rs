//! Where the bytes of a blob come from — memory, or a file read by range on
//! demand — and the `stat` stamp that tells whether a file is unchanged.
//!
//! Bottom layer: imports nothing from the crate.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

/// Bytes a blob handle reads from: in memory, or a file read by range on
/// demand (so a file cut short while a task reads it is an error for the
/// task, never a crash of the host).
pub(crate) enum Bytes {
    Memory(Arc<[u8]>),
    File { file: std::fs::File, len: u64 },
}

impl Bytes {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Bytes::Memory(b) => b.len() as u64,
            Bytes::File { len, .. } => *len,
        }
    }

    /// Up to `len` bytes from `offset` (fewer at the end, none past it).
    pub(crate) fn read(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let start = offset.min(self.len());
        let end = offset.saturating_add(len).min(self.len());
        match self {
            Bytes::Memory(b) => Ok(b[start as usize..end as usize].to_vec()),
            Bytes::File { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0; (end - start) as usize];
                file.read_exact_at(&mut buf, start)?;
                Ok(buf)
            }
        }
    }
}

/// Opens a file-backed blob for reading by range.
pub(crate) fn open_file(path: &std::path::Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    Ok(Bytes::File { file, len })
}

/// What `stat` says of a file: if it is the same later, so is the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
}

impl FileStamp {
    pub(crate) fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }

    /// The stamp of `path` now, if it can be read.
    pub(crate) fn now(path: &Path) -> Option<FileStamp> {
        fs::metadata(path).ok().map(|m| FileStamp::of(&m))
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}
