//! The one error type of the SDK.

use std::borrow::Cow;
use std::fmt;

use axum_core::response::{IntoResponse, Response as AxumResponse};
use http::StatusCode;

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] reports.
///
/// The first kinds mirror the JavaScript error classes Cloudflare throws for the same misuse
/// (`TypeError`, `RangeError`, …), so that behaviour documented for Workers carries over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An operation on an object in the wrong state, or a limit (JavaScript `Error`).
    InvalidState,
    /// A value of the wrong type or shape (JavaScript `TypeError`).
    Type,
    /// A value out of range (JavaScript `RangeError`).
    Range,
    /// An invalid close code or similar (DOM `InvalidAccessError`).
    InvalidAccess,
    /// A malformed argument (DOM `SyntaxError`).
    Syntax,
    /// The target object's mailbox is full: retry later. Answered with 503.
    Overloaded,
    /// The target object was reset (its handler panicked or timed out) while handling this call.
    Reset,
    /// Durable storage failed.
    Storage,
    /// Serializing or deserializing a value (JSON, attachments) failed.
    Serialization,
    /// An error returned by application code.
    User,
    /// The runtime is shutting down or hit an internal fault.
    Internal,
}

/// An error from the SDK, the runtime, or application code.
///
/// Handlers return it and `?` converts any [`std::error::Error`] into it, like `anyhow::Error`;
/// for that reason it does not implement `std::error::Error` itself (convert with
/// `Box::<dyn std::error::Error + Send + Sync>::from`). Inspect it through [`Error::kind`] and
/// the `is_*` predicates; the message text is for people and may change.
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An application error with `message`, for handlers that fail without an underlying error.
    pub fn message(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::User, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable description.
    pub fn text(&self) -> &str {
        &self.message
    }

    /// True when the target object is overloaded; the call may be retried later.
    pub fn is_overloaded(&self) -> bool {
        self.kind == ErrorKind::Overloaded
    }

    /// True when application code (the object's handler) produced this error.
    pub fn is_remote(&self) -> bool {
        matches!(self.kind, ErrorKind::User | ErrorKind::Reset)
    }

    /// The underlying error, if this one wraps another.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The status a Worker answers with when it returns this error unhandled.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug
            .field("kind", &self.kind)
            .field("message", &self.message);
        if let Some(source) = &self.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error {
            kind: ErrorKind::User,
            message: error.to_string().into(),
            source: Some(Box::new(error)),
        }
    }
}

/// Lets `?` carry an [`Error`] into code that uses boxed standard errors (or `anyhow`).
impl From<Error> for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn from(error: Error) -> Self {
        Box::new(StdError(error))
    }
}

/// [`Error`] seen through `std::error::Error`.
struct StdError(Error);

impl fmt::Debug for StdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A Worker (axum handler) may return `Result<_, Error>`: an overloaded object becomes 503 with
/// Cloudflare's message; anything else becomes a plain 500, with the cause logged here, once.
impl IntoResponse for Error {
    fn into_response(self) -> AxumResponse {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return (status, self.message.into_owned()).into_response();
        }
        tracing::error!(kind = ?self.kind, error = %self.message, "request failed");
        (status, "Internal Server Error").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_wraps_std_errors() {
        fn parse() -> Result<u8> {
            Ok("300".parse::<u8>()?)
        }
        let error = parse().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::User);
        assert!(error.is_remote());
        assert!(error.source().is_some());
        let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
        assert!(boxed.to_string().contains("too large"));
    }

    #[test]
    fn overload_maps_to_503() {
        let response = Error::new(ErrorKind::Overloaded, "busy").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = Error::message("boom").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
