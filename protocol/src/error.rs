//! The crate's public error type.
//!
//! Each module reports failures through its own small enum whose messages read
//! as sentences (`BlobError`, `CryptoError`, `ChunkerError`, `ConfigError`,
//! `TreeError`, …). Callers that only need to decide *what to do* convert any
//! of them into [`Error`], which carries an [`ErrorKind`] and answers
//! [`Error::is_retryable`]; the original error stays reachable through
//! [`std::error::Error::source`] and [`Error::downcast_ref`].
//!
//! # Rules
//!
//! - A format error is permanent: the same bytes will fail the same way on
//!   every retry, so no format error is retryable. Only I/O failures that the
//!   operating system itself calls transient (interrupted, timed out, would
//!   block) are retryable.
//! - The message of an [`Error`] is the message of the module error it wraps,
//!   so it still names the object and the cause.
//! - A module outside this file joins in by implementing `From<ItsError> for
//!   Error` with [`Error::new`] and the kind that fits.

use std::fmt;

/// What kind of failure an [`Error`] is; decides how callers react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An input or parameter is not acceptable (bad id text, bad chunker sizes, …).
    Invalid,
    /// Stored bytes are damaged or malformed (bad magic, truncated, bad table, …).
    Corrupt,
    /// Authentication failed: wrong key or passphrase, or tampered ciphertext.
    Crypto,
    /// Well-formed data of a format, version or feature this build does not know.
    Unsupported,
    /// Parameters differ from the ones stored for the repository.
    Mismatch,
    /// Reading or writing failed at the operating-system level.
    Io,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid input",
            Self::Corrupt => "corrupt data",
            Self::Crypto => "authentication failure",
            Self::Unsupported => "unsupported format",
            Self::Mismatch => "parameter mismatch",
            Self::Io => "I/O failure",
        })
    }
}

/// Any failure of this crate, with its kind and retryability.
pub struct Error {
    /// Decides retry and presentation without matching on module enums.
    kind: ErrorKind,
    /// Whether trying the same operation again may succeed.
    retryable: bool,
    /// The module error that says exactly what went wrong.
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    /// Wraps a module error as a permanent error of `kind`.
    pub fn new(kind: ErrorKind, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            kind,
            retryable: false,
            source: Box::new(source),
        }
    }

    /// Wraps a module error as a *temporary* error of `kind`: retrying may succeed.
    pub fn temporary(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            retryable: true,
            source: Box::new(source),
        }
    }

    /// Wraps an I/O error; transient OS conditions are retryable.
    pub fn io(source: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let retryable = matches!(
            source.kind(),
            Io::Interrupted | Io::TimedOut | Io::WouldBlock
        );
        Self {
            kind: ErrorKind::Io,
            retryable,
            source: Box::new(source),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying the same operation again may succeed. Format errors never do.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The wrapped module error, if it is a `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.source, self.kind)?;
        if self.retryable {
            f.write_str(", retryable")?;
        }
        f.write_str(")")?;
        let mut cause = self.source.source();
        while let Some(err) = cause {
            write!(f, "\ncaused by: {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::io(err)
    }
}

impl From<crate::ids::IdParseError> for Error {
    fn from(err: crate::ids::IdParseError) -> Self {
        Self::new(ErrorKind::Invalid, err)
    }
}

/// Shorthand for results of this crate's public API.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BlobId, IdParseError};

    #[test]
    fn an_id_parse_error_becomes_a_permanent_invalid_error_with_the_same_message() {
        // Arrange
        let parse_err = "zz".parse::<BlobId>().unwrap_err();
        let message = parse_err.to_string();

        // Act
        let err = Error::from(parse_err);

        // Assert
        assert_eq!(err.kind(), ErrorKind::Invalid);
        assert!(!err.is_retryable());
        assert_eq!(err.to_string(), message);
        assert!(err.downcast_ref::<IdParseError>().is_some());
    }

    #[test]
    fn only_transient_io_errors_are_retryable() {
        let timed_out = Error::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let missing = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(timed_out.is_retryable());
        assert!(!missing.is_retryable());
        assert_eq!(missing.kind(), ErrorKind::Io);
    }

    #[test]
    fn debug_shows_the_kind_and_the_cause_chain() {
        let inner = std::io::Error::other("disk on fire");
        let err = Error::new(ErrorKind::Corrupt, std::io::Error::other(inner));
        let debug = format!("{err:?}");
        assert!(debug.starts_with("disk on fire (corrupt data)"), "{debug}");
    }
}
