//! One error type for the whole library, classified in containerd's terms.
//!
//! Callers branch on [`Error::kind`], never on message text. Messages are lowercase and say which call
//! and which object failed; the underlying error (a gRPC status, an io error) stays reachable as the source.

use std::fmt;

/// What went wrong, in the vocabulary of containerd's `errdefs` (and Docker's).
///
/// `#[non_exhaustive]`: kinds may be added, so a `match` needs a `_` arm.
///
/// ```
/// use libcontainerd::{Error, ErrorKind};
///
/// fn worth_retrying(error: &Error) -> bool {
///     match error.kind() {
///         ErrorKind::Unavailable | ErrorKind::DeadlineExceeded => true,
///         _ => false,
///     }
/// }
/// assert!(!worth_retrying(&Error::invalid("bad id")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object (container, task, process, namespace) does not exist.
    NotFound,
    /// The object already exists (containerd's `AlreadyExists`).
    AlreadyExists,
    /// The request conflicts with the object's state, e.g. an exec id that would reuse the
    /// container's own FIFOs. A duplicate id is [`ErrorKind::AlreadyExists`], as in containerd.
    Conflict,
    /// The input is malformed: a bad id, a bad path, a bad value.
    InvalidArgument,
    /// The object is not in a state that allows the call (e.g. deleting a running task).
    FailedPrecondition,
    /// containerd (or a binary the call needs) cannot be reached.
    Unavailable,
    /// The call did not finish in time.
    DeadlineExceeded,
    /// The call was cancelled.
    Canceled,
    /// containerd or the runtime does not support the call.
    NotImplemented,
    /// Permission denied.
    PermissionDenied,
    /// A bug or an unexpected condition in containerd, the shim or this library.
    Internal,
    /// Anything that could not be classified.
    Unknown,
}

impl ErrorKind {
    /// A short lowercase name, stable for scripts (`not found`, `conflict`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Canceled => "canceled",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Internal => "internal",
            ErrorKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Any error of the caller's own, as an attach callback or a [`Backend`](crate::Backend) returns
/// it: `?` turns every `std::error::Error + Send + Sync` into one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The library's error: a kind, a message with context, and the source it came from.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Source>,
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message` (lowercase, with context).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying error.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The classification to branch on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the source's text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for an [`ErrorKind::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// Shorthand for an [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// Classify an io error that happened while doing `context`.
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::InvalidInput => ErrorKind::InvalidArgument,
            std::io::ErrorKind::TimedOut => ErrorKind::DeadlineExceeded,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, format!("{context}: {err}")).with_source(err)
    }

    /// Classify a gRPC status returned by containerd for the call described by `context`.
    ///
    /// A failure of the connection itself is [`ErrorKind::Unavailable`], whatever code tonic gave
    /// it: containerd dying during a call surfaces as `Unknown` ("transport error", a broken pipe or
    /// a reset) or `Cancelled` ("connection closed"), which would otherwise read as an answer of
    /// containerd's.
    pub(crate) fn from_status(context: impl fmt::Display, status: tonic::Status) -> Self {
        use tonic::Code;
        if let Some(failure) = transport_failure(&status) {
            let message = match failure {
                TransportFailure::Unreachable => format!(
                    "{context}: containerd is unavailable ({})",
                    innermost(&status)
                ),
                TransportFailure::Lost => format!(
                    "{context}: lost the connection to containerd during the call ({}); it may or may not have taken effect",
                    innermost(&status)
                ),
            };
            return Error::new(ErrorKind::Unavailable, message).with_source(status);
        }
        // containerd lost its connection to the task's shim (the shim died): not an answer about
        // the task, and not containerd's own failure either.
        if status.code() == Code::Unknown && status.message().contains("ttrpc: closed") {
            return Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{context}: the container's shim is gone ({})",
                    status.message().trim()
                ),
            )
            .with_source(status);
        }
        let kind = match status.code() {
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::Unavailable => ErrorKind::Unavailable,
            Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            Code::Cancelled => ErrorKind::Canceled,
            Code::Unimplemented => ErrorKind::NotImplemented,
            Code::PermissionDenied | Code::Unauthenticated => ErrorKind::PermissionDenied,
            Code::Aborted => ErrorKind::Conflict,
            Code::Internal | Code::DataLoss | Code::ResourceExhausted => ErrorKind::Internal,
            Code::Ok | Code::Unknown => ErrorKind::Unknown,
        };
        let detail = status.message().trim();
        let message = if detail.is_empty() {
            format!("{context}: {}", kind)
        } else {
            format!("{context}: {detail}")
        };
        Error::new(kind, message).with_source(status)
    }

    /// Whether containerd may have carried out the call although it failed: the connection broke
    /// while the call was in flight, so nobody knows.
    pub(crate) fn outcome_unknown(&self) -> bool {
        let status = self
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<tonic::Status>());
        status.and_then(transport_failure) == Some(TransportFailure::Lost)
    }

    /// A callback's error under `context`: one of ours keeps its kind, any other is
    /// [`ErrorKind::Unknown`] with the caller's error as its source.
    pub(crate) fn from_callback(context: impl fmt::Display, error: BoxError) -> Self {
        match error.downcast::<Error>() {
            Ok(ours) => ours.context(context),
            Err(theirs) => {
                Error::new(ErrorKind::Unknown, format!("{context}: {theirs}")).with_source(theirs)
            }
        }
    }

    /// The same error with `context` put in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// How a call failed to get an answer from containerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    /// No connection could be made: the request never reached containerd.
    Unreachable,
    /// The connection broke while the call was in flight: containerd may have carried it out.
    Lost,
}

/// Whether `status` reports a failed or broken connection rather than an answer of containerd's.
///
/// A status containerd sends carries no source; one tonic makes from a transport failure carries the
/// `tonic::transport::Error` it came from. Of those, a failed connect is `Unavailable`; a connection
/// that broke under the call shows an io error (broken pipe, reset) in the chain, or is `Cancelled`
/// (hyper gave up the queued request when the connection closed). Other transport errors are local
/// protocol failures (e.g. a message over the size limit, which h2 resets itself) and keep their code.
pub(crate) fn transport_failure(status: &tonic::Status) -> Option<TransportFailure> {
    let mut source = std::error::Error::source(status);
    let (mut transport, mut io) = (false, false);
    while let Some(err) = source {
        transport |= err.is::<tonic::transport::Error>();
        io |= err.is::<std::io::Error>();
        source = err.source();
    }
    if !transport {
        return None;
    }
    match status.code() {
        tonic::Code::Unavailable => Some(TransportFailure::Unreachable),
        tonic::Code::Cancelled => Some(TransportFailure::Lost),
        _ if io => Some(TransportFailure::Lost),
        _ => None,
    }
}

/// The text of the deepest cause of `err`, e.g. "Connection refused (os error 111)".
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
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
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        let e = Error::from_status(
            "get container c1",
            tonic::Status::not_found("container \"c1\" in namespace \"x\": not found"),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().starts_with("get container c1: "));
        let e = Error::from_status("create", tonic::Status::already_exists(""));
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(e.to_string(), "create: already exists");
        let e = Error::from_status("x", tonic::Status::unavailable("connection refused"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_dead_shim_is_unavailable_not_unknown() {
        let e = Error::from_status(
            "wait for container c1",
            tonic::Status::unknown("ttrpc: closed: unknown"),
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("shim is gone"), "{e}");
        let e = Error::from_status("x", tonic::Status::unknown("something else"));
        assert_eq!(e.kind(), ErrorKind::Unknown);
        // A status containerd sent is not a transport failure, whatever its code.
        let e = Error::from_status("x", tonic::Status::cancelled("context canceled"));
        assert_eq!(e.kind(), ErrorKind::Canceled);
        assert!(!e.outcome_unknown());
    }

    #[test]
    fn io_errors_keep_their_kind() {
        let e = Error::io(
            "open /nope",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().starts_with("open /nope: "));
    }
}
