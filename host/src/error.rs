//! cairn's error: what went wrong, as a kind a program can match on, and a
//! one-line message that says what to do about it.
//!
//! Layer: bottom (data); imports nothing from the crate.

use std::fmt;

/// What kind of thing failed. Match on it; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file could not be read or written (a component, an `@file`, the cache).
    Io,
    /// The bytes are not a WebAssembly component (garbage, or a core module).
    NotAComponent,
    /// The component is malformed or uses something cairn cannot run.
    InvalidComponent,
    /// No export of that name, or an ambiguous one.
    UnknownExport,
    /// Arguments of the wrong number, name or type, or malformed WAVE.
    BadArguments,
    /// The task trapped or failed while running. Nothing was cached.
    TaskFailed,
    /// The cache directory or its index is unusable (unreadable, damaged, not writable).
    Cache,
    /// The shared tier (a NATS server given with `--remote`) could not be
    /// reached, or failed. Nothing stored locally is lost.
    Remote,
    /// A bug or an unexpected engine failure.
    Internal,
}

impl ErrorKind {
    /// The kind as a stable kebab-case name (`bad-arguments`, `task-failed`,
    /// …), for programs reading `--json` errors.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::NotAComponent => "not-a-component",
            ErrorKind::InvalidComponent => "invalid-component",
            ErrorKind::UnknownExport => "unknown-export",
            ErrorKind::BadArguments => "bad-arguments",
            ErrorKind::TaskFailed => "task-failed",
            ErrorKind::Cache => "cache",
            ErrorKind::Remote => "remote",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A cairn error: a [`ErrorKind`] and a message that says what to do.
///
/// `Display` prints the message on one line; [`std::error::Error::source`]
/// gives the underlying cause when there is one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with cairn's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        self.source = Some(source.into());
        self
    }

    /// What kind of thing failed.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn io(what: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {err}")).with_source(err)
    }

    pub(crate) fn cache(
        what: impl fmt::Display,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::new(ErrorKind::Cache, format!("{what}: {err}")).with_source(err)
    }

    pub(crate) fn internal(what: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Internal, what.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
