//! Why an ingest failed, and how the upload route should answer it.
//!
//! Every message is a sentence naming the pack and the cause, fit for the
//! server log. The route does not match on variants: it asks
//! [`IngestError::class`] for the kind of HTTP answer, [`IngestError::code`]
//! for the [`codes`] value the agent acts on, and
//! [`IngestError::is_retryable`] for the `retryable` flag.

use std::path::PathBuf;

use stowage_protocol::api::codes;
use stowage_protocol::ids::PackId;
use stowage_protocol::pack::PackError;

use super::FaultPoint;
use crate::db::DbError;
use crate::storage::StorageError;

/// The kind of HTTP answer an [`IngestError`] calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request itself is broken, e.g. the body stopped mid-way (400).
    BadRequest,
    /// The body arrived but is not the pack it claims to be (422, `pack_rejected`).
    Unprocessable,
    /// The body is longer than any pack may be (413).
    PayloadTooLarge,
    /// The object store or the database cannot serve now; retry later (503).
    Unavailable,
    /// The server failed; the cause is only in the log (500).
    Internal,
}

/// A pack upload could not be stored and indexed. Nothing was indexed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the request body failed (the client went away or sent garbage framing).
    #[error("unable to read the body of pack {pack} - {message}")]
    Body {
        /// The pack being uploaded.
        pack: PackId,
        /// The body stream's error, as text.
        message: String,
    },
    /// The body grew past the largest allowed pack.
    #[error("pack {pack} is larger than the {limit}-byte maximum; the upload was refused")]
    TooLarge {
        /// The pack being uploaded.
        pack: PackId,
        /// The limit in bytes.
        limit: u64,
    },
    /// The body is too short to be any pack.
    #[error(
        "pack {pack} is only {size} bytes, too short to hold a header, a table and a trailer ({min} bytes)"
    )]
    Truncated {
        /// The pack being uploaded.
        pack: PackId,
        /// Bytes received.
        size: u64,
        /// The smallest valid pack.
        min: u64,
    },
    /// The body does not hash to the id the upload names.
    #[error("wrong pack hash: the body hashes to {actual}, the URL names {expected}")]
    WrongPackHash {
        /// The id in the URL.
        expected: PackId,
        /// BLAKE3 of the bytes received.
        actual: PackId,
    },
    /// The header, trailer or table breaks the pack format.
    #[error("pack {pack} has an inconsistent header or table - {source}")]
    InconsistentTable {
        /// The pack being uploaded.
        pack: PackId,
        /// The first failed format check.
        source: PackError,
    },
    /// The temporary file could not be created, written or read.
    #[error("unable to {action} {path:?} for pack {pack} - {source}")]
    TempFile {
        /// The pack being uploaded.
        pack: PackId,
        /// What was being done, e.g. "write temporary file".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The filesystem error.
        source: std::io::Error,
    },
    /// Writing the pack object failed; nothing was indexed.
    #[error("unable to store pack {pack} in the object store - {source}")]
    Storage {
        /// The pack being uploaded.
        pack: PackId,
        /// The store's error.
        source: StorageError,
    },
    /// A database step failed; the index is unchanged.
    #[error("unable to {action} pack {pack} - {source}")]
    Database {
        /// The pack being uploaded.
        pack: PackId,
        /// What was being done, e.g. "index".
        action: &'static str,
        /// The database error.
        source: DbError,
    },
    /// Garbage collection is deleting this pack's object (a retried upload
    /// of a pack it just collected); sending it again later stores it.
    #[error(
        "pack {pack} is being deleted by garbage collection; the upload was not stored, retry it later"
    )]
    BeingDeleted {
        /// The pack being uploaded.
        pack: PackId,
    },
    /// A fault hook stopped the ingest on purpose (tests of crash recovery).
    #[error("pack {pack} ingest was stopped by an injected fault at {point:?}")]
    Injected {
        /// The pack being uploaded.
        pack: PackId,
        /// Where it stopped.
        point: FaultPoint,
    },
}

impl IngestError {
    /// The kind of HTTP answer this calls for.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Body { .. } => ErrorClass::BadRequest,
            Self::Truncated { .. }
            | Self::WrongPackHash { .. }
            | Self::InconsistentTable { .. } => ErrorClass::Unprocessable,
            Self::TooLarge { .. } => ErrorClass::PayloadTooLarge,
            Self::Storage { .. } | Self::BeingDeleted { .. } => ErrorClass::Unavailable,
            Self::Database { source, .. } => match source {
                DbError::Connect { .. } | DbError::Query { .. } => ErrorClass::Unavailable,
                _ => ErrorClass::Internal,
            },
            Self::TempFile { .. } | Self::Injected { .. } => ErrorClass::Internal,
        }
    }

    /// The [`codes`] value for the agent.
    pub fn code(&self) -> &'static str {
        match self.class() {
            ErrorClass::BadRequest | ErrorClass::PayloadTooLarge => codes::INVALID_REQUEST,
            ErrorClass::Unprocessable => codes::PACK_REJECTED,
            ErrorClass::Unavailable | ErrorClass::Internal => codes::INTERNAL,
        }
    }

    /// Whether sending the same upload again may succeed: yes for server-side
    /// failures and a broken body, no for a pack that fails a check.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::BadRequest | ErrorClass::Unavailable | ErrorClass::Internal
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_hash_names_both_ids_and_is_a_permanent_rejection() {
        // Arrange
        let expected = PackId::from_bytes([1; 32]);
        let actual = PackId::from_bytes([2; 32]);

        // Act
        let err = IngestError::WrongPackHash { expected, actual };

        // Assert
        assert_eq!(
            err.to_string(),
            format!("wrong pack hash: the body hashes to {actual}, the URL names {expected}")
        );
        assert_eq!(err.class(), ErrorClass::Unprocessable);
        assert_eq!(err.code(), codes::PACK_REJECTED);
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_store_failure_is_unavailable_and_retryable_with_an_opaque_code() {
        let pack = PackId::from_bytes([3; 32]);
        let err = IngestError::Storage {
            pack,
            source: StorageError::Remote {
                operation: "PutObject",
                target: "k".to_owned(),
                message: "down".to_owned(),
            },
        };
        assert_eq!(err.class(), ErrorClass::Unavailable);
        assert_eq!(err.code(), codes::INTERNAL);
        assert!(err.is_retryable());
        assert!(err.to_string().contains(&pack.to_string()), "{err}");
    }

    #[test]
    fn a_pack_being_deleted_is_unavailable_and_retryable_and_says_why() {
        let pack = PackId::from_bytes([5; 32]);
        let err = IngestError::BeingDeleted { pack };
        assert_eq!(err.class(), ErrorClass::Unavailable);
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            format!(
                "pack {pack} is being deleted by garbage collection; the upload was not stored, retry it later"
            )
        );
    }

    #[test]
    fn an_oversized_body_is_payload_too_large_and_not_retryable() {
        let err = IngestError::TooLarge {
            pack: PackId::from_bytes([4; 32]),
            limit: 10,
        };
        assert_eq!(err.class(), ErrorClass::PayloadTooLarge);
        assert_eq!(err.code(), codes::INVALID_REQUEST);
        assert!(!err.is_retryable());
    }
}
