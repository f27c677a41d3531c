//! The layer's error: a kind a caller can act on and a one-line message that says what to do.

/// What went wrong, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad value from the caller (a port, a subnet, a name).
    Invalid,
    /// No such network or container record.
    NotFound,
    /// The thing exists already, or a port or subnet is taken.
    Conflict,
    /// A network still has containers on it.
    InUse,
    /// A plugin is missing or failed.
    Plugin,
    /// A file or system call failed.
    Io,
}

/// An error of the network layer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn io(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {e}"))
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The layer's result.
pub type Result<T> = std::result::Result<T, Error>;
