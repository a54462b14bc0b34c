//! Keys, key wrapping and data-key sealing.
//!
//! # Key hierarchy
//!
//! ```text
//! recovery passphrase ──argon2id──▶ KEK ──wraps──▶ id key + recovery secret   (WrappedTenantKeys, on the server)
//! id key ──keyed BLAKE3──▶ chunk ids;  derive_key ──▶ tree id key ──▶ tree ids
//! id key ──derive_key──▶ chunker seed (content-defined boundaries differ per tenant)
//! recovery public key ◀── recovery secret (X25519)
//! pack data key (random, one per pack) ──sealed to──▶ recovery public key   (SealedDataKey, in the pack header)
//! pack data key ──XChaCha20-Poly1305──▶ every blob in that pack
//! ```
//!
//! - [`IdKey`] (32 bytes per tenant) makes blob ids unguessable: without it
//!   the server cannot test whether a tenant stores a known file.
//! - [`RecoverySecret`] / [`RecoveryPublicKey`]: an X25519 pair. Writing needs
//!   only the public key; reading needs the secret.
//! - [`WriteKeys`] = id key + public key: what a *write-only agent* holds. It
//!   can chunk, dedup against the server and seal new packs, but it cannot open
//!   any pack, not even its own, because each pack's [`DataKey`] is sealed to
//!   the public key and then forgotten.
//! - [`TenantKeys`] = id key + recovery secret: what a restoring agent holds
//!   after unwrapping [`WrappedTenantKeys`] with the recovery passphrase.
//!
//! Every function that needs randomness has a deterministic core taking the
//! random bytes as arguments (for known-answer tests) and a `*_random` wrapper
//! that draws them from the OS. Secret types zeroize on drop and redact their
//! `Debug` output.

mod data_key;
mod keys;
mod wrap;

pub use data_key::{
    DataKey, SEALED_DATA_KEY_LEN, SealedDataKey, open_data_key, seal_data_key, seal_data_key_random,
};
pub use keys::{IdKey, RecoveryPublicKey, RecoverySecret, TenantKeys, WriteKeys};
pub use wrap::{KdfParams, WRAPPED_TENANT_KEYS_LEN, WrappedTenantKeys};

use crate::error::{Error, ErrorKind};

/// BLAKE3 `derive_key` context for the tree id key. Never modify.
pub const TREE_ID_CONTEXT: &str = "stowage 2026-11 tree id v1";
/// BLAKE3 `derive_key` context for the key that seals a pack data key. Never modify.
pub const PACK_KEY_SEAL_CONTEXT: &str = "stowage 2026-11 pack key seal v1";
/// BLAKE3 `derive_key` context for the chunker's gear seed. Never modify.
pub const CHUNKER_SEED_CONTEXT: &str = "stowage 2026-11 chunker seed v1";

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The passphrase did not open the wrapped keys (or their bytes were changed).
    #[error("wrong recovery passphrase (or damaged key blob)")]
    WrongPassphrase,
    /// Wrapped tenant keys of the wrong size.
    #[error("wrapped tenant keys are {found} bytes long, expected {WRAPPED_TENANT_KEYS_LEN}")]
    WrappedKeysLength {
        /// The size that was given.
        found: usize,
    },
    /// Wrapped tenant keys without the "STWK" magic.
    #[error("wrapped tenant keys do not start with the magic \"STWK\" (found {found:02x?})")]
    WrappedKeysMagic {
        /// The first four bytes that were found instead.
        found: [u8; 4],
    },
    /// Wrapped tenant keys of a version this build cannot read.
    #[error("wrapped tenant keys have version {0}, this build reads only version 1")]
    WrappedKeysVersion(u8),
    /// Wrapped tenant keys naming an unknown key-derivation function.
    #[error("wrapped tenant keys use key-derivation function {0}, only 1 (argon2id) is known")]
    UnknownKdf(u8),
    /// An argon2id parameter outside the accepted range.
    #[error("argon2id {name} of {value} is outside the accepted range {min}..={max}")]
    KdfParamOutOfRange {
        /// Which parameter: "memory cost (KiB)", "time cost" or "parallelism".
        name: &'static str,
        /// The rejected value.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// argon2 itself refused to run (e.g. it could not allocate its memory).
    #[error("argon2id key derivation failed: {0}")]
    Kdf(String),
    /// The unwrapped secret does not belong to the public key stored beside it.
    #[error(
        "wrapped tenant keys hold a recovery secret whose public key differs from the stored public key {stored}"
    )]
    PublicKeyMismatch {
        /// The public key stored in bytes 34..66.
        stored: RecoveryPublicKey,
    },
    /// A Diffie-Hellman exchange gave all zeros: the public key is a low-order point.
    #[error("X25519 public key {0} is a low-order point (all-zero shared secret)")]
    LowOrderPoint(RecoveryPublicKey),
    /// A sealed data key did not open with this recovery secret.
    #[error(
        "pack data key does not open with this tenant's recovery secret (wrong tenant or damaged pack header)"
    )]
    DataKeyRejected,
}

impl CryptoError {
    /// The [`ErrorKind`] this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::WrongPassphrase | Self::DataKeyRejected => ErrorKind::Crypto,
            Self::WrappedKeysLength { .. }
            | Self::WrappedKeysMagic { .. }
            | Self::PublicKeyMismatch { .. }
            | Self::LowOrderPoint(_) => ErrorKind::Corrupt,
            Self::WrappedKeysVersion(_) | Self::UnknownKdf(_) => ErrorKind::Unsupported,
            Self::KdfParamOutOfRange { .. } | Self::Kdf(_) => ErrorKind::Invalid,
        }
    }
}

impl From<CryptoError> for Error {
    fn from(err: CryptoError) -> Self {
        Self::new(err.kind(), err)
    }
}

/// An XChaCha20-Poly1305 cipher under `key`.
pub(crate) fn cipher(key: &[u8; 32]) -> chacha20poly1305::XChaCha20Poly1305 {
    use chacha20poly1305::KeyInit;
    chacha20poly1305::XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crypto_error_is_permanent() {
        let err = Error::from(CryptoError::WrongPassphrase);
        assert_eq!(err.kind(), ErrorKind::Crypto);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "wrong recovery passphrase (or damaged key blob)"
        );
    }

    #[test]
    fn derive_key_contexts_are_distinct() {
        assert_ne!(TREE_ID_CONTEXT, PACK_KEY_SEAL_CONTEXT);
        assert_ne!(TREE_ID_CONTEXT, CHUNKER_SEED_CONTEXT);
        assert_ne!(PACK_KEY_SEAL_CONTEXT, CHUNKER_SEED_CONTEXT);
    }
}
