//! Sealed blobs: one compressed, encrypted and authenticated chunk or tree.
//!
//! ```text
//! 0    2  magic "SB"
//! 2    1  version = 1
//! 3    1  kind: 1 = data chunk, 2 = tree
//! 4    1  flags: bit 0 = zstd-compressed; other bits must be 0
//! 5    24 nonce (random)
//! 29   n  XChaCha20-Poly1305 ciphertext of the (maybe compressed) plaintext
//! 29+n 16 tag
//! ```
//! Associated data = bytes 0..5 || blob id (32), so a blob cannot be passed
//! off under another id or kind, nor its header flags changed.
//!
//! Sealing compresses straight into the output buffer, drops compression
//! when it does not shrink the blob, and encrypts in place: the plaintext is
//! read once and no intermediate copy is made. Opening checks magic, version,
//! kind, flags, size and the tag before it decompresses, and decompression
//! never allocates past the caller's maximum plaintext size.

mod open;
#[cfg(test)]
mod proptests;
mod seal;

pub use open::{BlobOpener, open_blob, verify_blob_id};
pub use seal::{BlobSealer, Compression, seal_blob, seal_blob_into, seal_blob_random};

use crate::error::{Error, ErrorKind};
use crate::ids::BlobId;

/// Magic of a sealed blob. Never modify.
pub const BLOB_MAGIC: [u8; 2] = *b"SB";
/// Layout version written by this build. Never modify what version 1 means.
pub const BLOB_VERSION: u8 = 1;
/// Flag bit: the plaintext was zstd-compressed before encryption.
pub const FLAG_ZSTD: u8 = 0b0000_0001;
/// Bytes before the ciphertext.
pub const BLOB_HEADER_LEN: usize = 29;
/// Length of the AEAD tag at the end.
pub const BLOB_TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its (maybe compressed) plaintext: 29-byte header + 16-byte tag.
pub const SEALED_BLOB_OVERHEAD: usize = BLOB_HEADER_LEN + BLOB_TAG_LEN;

/// What a sealed blob holds; stored in byte 3 of the blob header.
///
/// Never modify the numbers: they are part of the version-1 format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BlobKind {
    /// A chunk of file content.
    Data = 1,
    /// A serialized directory tree (leaf or index).
    Tree = 2,
}

impl BlobKind {
    /// The kind with this format byte, if any.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Data),
            2 => Some(Self::Tree),
            _ => None,
        }
    }

    /// The format byte of this kind.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for BlobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Data => "data",
            Self::Tree => "tree",
        })
    }
}

/// The plaintext header fields of a sealed blob, checked but not authenticated.
///
/// Useful to cross-check a pack table without the data key; only opening
/// the blob authenticates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobHeader {
    /// Data chunk or tree.
    pub kind: BlobKind,
    /// Whether the plaintext was zstd-compressed.
    pub compressed: bool,
    /// The AEAD nonce.
    pub nonce: [u8; 24],
}

impl BlobHeader {
    /// Parses and checks the header of the sealed blob `id`: length, magic,
    /// version, kind and flags.
    ///
    /// # Errors
    ///
    /// The [`BlobError`] naming the first check that failed.
    pub fn parse(id: &BlobId, sealed: &[u8]) -> Result<Self, BlobError> {
        if sealed.len() < SEALED_BLOB_OVERHEAD {
            return Err(BlobError::TooShort {
                id: *id,
                len: sealed.len(),
            });
        }
        if sealed[..2] != BLOB_MAGIC {
            return Err(BlobError::BadMagic {
                id: *id,
                found: [sealed[0], sealed[1]],
            });
        }
        if sealed[2] != BLOB_VERSION {
            return Err(BlobError::UnsupportedVersion {
                id: *id,
                version: sealed[2],
            });
        }
        let kind = BlobKind::from_u8(sealed[3]).ok_or(BlobError::UnknownKind {
            id: *id,
            kind: sealed[3],
        })?;
        let flags = sealed[4];
        if flags & !FLAG_ZSTD != 0 {
            return Err(BlobError::UnknownFlags { id: *id, flags });
        }
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&sealed[5..BLOB_HEADER_LEN]);
        Ok(Self {
            kind,
            compressed: flags & FLAG_ZSTD != 0,
            nonce,
        })
    }
}

/// The associated data of a blob: its first 5 header bytes and its id.
pub(crate) fn associated_data(header: &[u8], id: &BlobId) -> [u8; 37] {
    let mut ad = [0u8; 37];
    ad[..5].copy_from_slice(&header[..5]);
    ad[5..].copy_from_slice(id.as_bytes());
    ad
}

/// Why a blob could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// Fewer bytes than an empty sealed blob has.
    #[error(
        "sealed blob {id} is {len} bytes long, shorter than the {SEALED_BLOB_OVERHEAD}-byte minimum"
    )]
    TooShort {
        /// The blob.
        id: BlobId,
        /// Its length.
        len: usize,
    },
    /// The first two bytes are not "SB".
    #[error("sealed blob {id} does not start with the magic \"SB\" (found {found:02x?})")]
    BadMagic {
        /// The blob.
        id: BlobId,
        /// The bytes found instead.
        found: [u8; 2],
    },
    /// A layout version this build does not read.
    #[error("sealed blob {id} has version {version}, this build reads only version {BLOB_VERSION}")]
    UnsupportedVersion {
        /// The blob.
        id: BlobId,
        /// The version byte found.
        version: u8,
    },
    /// A kind byte that names no kind.
    #[error("sealed blob {id} has unknown kind {kind}")]
    UnknownKind {
        /// The blob.
        id: BlobId,
        /// The kind byte found.
        kind: u8,
    },
    /// The blob is of another kind than the caller asked for.
    #[error("sealed blob {id} is a {found} blob, expected a {expected} blob")]
    WrongKind {
        /// The blob.
        id: BlobId,
        /// The kind asked for.
        expected: BlobKind,
        /// The kind in the header.
        found: BlobKind,
    },
    /// Flag bits this build does not know.
    #[error("sealed blob {id} has unknown flags {flags:#010b}")]
    UnknownFlags {
        /// The blob.
        id: BlobId,
        /// The flags byte found.
        flags: u8,
    },
    /// The blob is bigger than the caller allows.
    #[error("sealed blob {id} holds {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The blob.
        id: BlobId,
        /// Its (ciphertext) length.
        len: usize,
        /// The caller's maximum plaintext length.
        max: usize,
    },
    /// The tag did not verify.
    #[error("sealed blob {id} fails authentication (wrong data key, wrong id, or damaged bytes)")]
    Authentication {
        /// The blob.
        id: BlobId,
    },
    /// The authenticated zstd payload does not decompress within the limit.
    #[error("sealed blob {id} does not decompress within {max} bytes: {reason}")]
    Decompress {
        /// The blob.
        id: BlobId,
        /// The caller's maximum plaintext length.
        max: usize,
        /// What zstd said.
        reason: String,
    },
    /// The plaintext does not hash to the blob's id.
    #[error("blob {id} content does not match its id")]
    ContentMismatch {
        /// The blob.
        id: BlobId,
    },
    /// A zstd level outside zstd's range.
    #[error("zstd level {level} is outside the accepted range {min}..={max}")]
    InvalidZstdLevel {
        /// The rejected level.
        level: i32,
        /// Smallest accepted level.
        min: i32,
        /// Largest accepted level.
        max: i32,
    },
}

impl BlobError {
    /// The [`ErrorKind`] this error maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::TooShort { .. }
            | Self::BadMagic { .. }
            | Self::UnknownKind { .. }
            | Self::WrongKind { .. }
            | Self::TooLarge { .. }
            | Self::Decompress { .. }
            | Self::ContentMismatch { .. } => ErrorKind::Corrupt,
            Self::UnsupportedVersion { .. } | Self::UnknownFlags { .. } => ErrorKind::Unsupported,
            Self::Authentication { .. } => ErrorKind::Crypto,
            Self::InvalidZstdLevel { .. } => ErrorKind::Invalid,
        }
    }
}

impl From<BlobError> for Error {
    fn from(err: BlobError) -> Self {
        Self::new(err.kind(), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_bytes_round_trip_and_unknown_bytes_are_none() {
        assert_eq!(BlobKind::from_u8(1), Some(BlobKind::Data));
        assert_eq!(BlobKind::from_u8(2), Some(BlobKind::Tree));
        assert_eq!(BlobKind::from_u8(0), None);
        assert_eq!(BlobKind::from_u8(3), None);
        assert_eq!(BlobKind::Tree.as_u8(), 2);
    }

    #[test]
    fn the_overhead_is_header_plus_tag() {
        assert_eq!(SEALED_BLOB_OVERHEAD, 45);
    }

    #[test]
    fn header_checks_name_the_blob_and_the_problem() {
        let id = BlobId::from_bytes([7; 32]);
        let mut sealed = vec![0u8; 45];
        assert!(matches!(
            BlobHeader::parse(&id, &sealed[..44]),
            Err(BlobError::TooShort { len: 44, .. })
        ));
        let err = BlobHeader::parse(&id, &sealed).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("sealed blob {id} does not start")),
            "{err}"
        );
        sealed[..5].copy_from_slice(&[b'S', b'B', 2, 1, 0]);
        assert!(matches!(
            BlobHeader::parse(&id, &sealed),
            Err(BlobError::UnsupportedVersion { version: 2, .. })
        ));
        sealed[2] = 1;
        sealed[3] = 9;
        assert!(matches!(
            BlobHeader::parse(&id, &sealed),
            Err(BlobError::UnknownKind { kind: 9, .. })
        ));
        sealed[3] = 2;
        sealed[4] = 0b10;
        assert!(matches!(
            BlobHeader::parse(&id, &sealed),
            Err(BlobError::UnknownFlags { flags: 2, .. })
        ));
        sealed[4] = 1;
        let header = BlobHeader::parse(&id, &sealed).unwrap();
        assert_eq!(header.kind, BlobKind::Tree);
        assert!(header.compressed);
    }
}
