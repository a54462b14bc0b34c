//! Packs: the files the server stores, each holding many sealed blobs.
//!
//! Grouping blobs into ~16 MiB packs keeps object counts and S3 request costs
//! low. A pack carries one fresh data key (sealed to the tenant's public key)
//! and a plaintext table of its blobs, so the server can check, index and
//! garbage-collect packs without any key, while learning only blob sizes and
//! the reference graph (ids are keyed hashes). The pack id is the BLAKE3 hash
//! of the whole file, so uploads and scrubs detect any change.
//!
//! Layout (version 1, little-endian):
//!
//! ```text
//! 0    4   magic "STWP"
//! 4    1   version = 1
//! 5    3   reserved, zero
//! 8    80  SealedDataKey
//! 88   …   sealed blobs, back to back
//! T    …   table (plaintext, see `PackTable`)
//! end-24   trailer (see `PackTrailer`)
//! ```
//!
//! Writing: [`PackWriter`]. Reading a whole pack: [`PackReader`]. A server
//! that streams a pack to disk checks the first [`PACK_HEADER_LEN`] bytes with
//! [`PackHeader::decode`], then the last [`PACK_TRAILER_LEN`] with
//! [`PackTrailer::decode`], then the table bytes with [`PackTable::decode`];
//! every check of the format is done before anything proportional to a count
//! in the file is allocated.

mod reader;
mod table;
mod writer;

pub use reader::PackReader;
pub use table::{PackEntry, PackTable, PackTrailer};
pub use writer::PackWriter;

use crate::blob::{BlobHeader, BlobKind};
use crate::crypto::{SEALED_DATA_KEY_LEN, SealedDataKey};
use crate::ids::{BlobId, PackId};

/// Magic at the start of every pack. Never modify: it is part of the version-1 format.
pub const PACK_MAGIC: [u8; 4] = *b"STWP";
/// The pack layout version this crate writes. Never modify the meaning of version 1.
pub const PACK_VERSION: u8 = 1;
/// Magic at the very end of every pack. Never modify.
pub const PACK_TRAILER_MAGIC: [u8; 4] = *b"STWT";
/// Header length: magic, version, reserved, sealed data key. Blobs start here.
pub const PACK_HEADER_LEN: usize = 8 + SEALED_DATA_KEY_LEN;
/// Trailer length: table offset, table length, table hash prefix, magic.
pub const PACK_TRAILER_LEN: usize = 24;
/// The agent closes a pack once it reaches this size.
pub const TARGET_PACK_SIZE: usize = 16 * 1024 * 1024;
/// No valid pack is larger; the server refuses bigger uploads.
pub const MAX_PACK_SIZE: usize = 128 * 1024 * 1024;

/// A pack could not be written, parsed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// The file is shorter than a header, an empty table and a trailer.
    #[error("pack is {0} bytes, too short to hold a header, a table and a trailer")]
    TooShort(u64),
    /// The file is larger than [`MAX_PACK_SIZE`].
    #[error("pack is {0} bytes, more than the 128 MiB maximum")]
    TooLarge(u64),
    /// A magic does not match.
    #[error("pack {part} magic is {found:02x?}, expected {expected:?}")]
    BadMagic {
        /// "header" or "trailer".
        part: &'static str,
        /// The bytes found.
        found: [u8; 4],
        /// The magic expected, as text.
        expected: &'static str,
    },
    /// The header's version is not one this crate reads.
    #[error("pack version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u8),
    /// The header's reserved bytes are not zero.
    #[error("pack header reserved bytes are {0:02x?}, expected zeros")]
    ReservedNotZero([u8; 3]),
    /// Bytes ended inside a field.
    #[error("pack is truncated while reading {what}: need {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// The trailer's table range is not inside the file or does not end at the trailer.
    #[error(
        "pack table at offset {offset} with length {len} does not lie between the header and the trailer of a {pack_len}-byte pack"
    )]
    TableOutOfRange {
        /// Table offset from the trailer.
        offset: u64,
        /// Table length from the trailer.
        len: u32,
        /// Size of the whole pack.
        pack_len: u64,
    },
    /// The table bytes do not hash to the trailer's prefix.
    #[error(
        "pack table hash does not match the trailer (table damaged or trailer from another pack)"
    )]
    TableHashMismatch,
    /// A count cannot fit in the bytes that remain.
    #[error("pack table claims {count} {what}, but at most {max} fit")]
    CountTooLarge {
        /// What is counted.
        what: &'static str,
        /// The claimed count.
        count: u64,
        /// The most that fit.
        max: u64,
    },
    /// A table entry has an unknown blob kind.
    #[error("pack table entry {index} has unknown blob kind {kind}")]
    UnknownKind {
        /// Position of the entry in the table.
        index: usize,
        /// The kind byte.
        kind: u8,
    },
    /// A blob does not start where the previous one ended (gap, overlap or disorder).
    #[error(
        "pack blob {id} starts at {offset}, expected {expected} (blobs must be contiguous and in order)"
    )]
    BlobMisplaced {
        /// The blob's id.
        id: BlobId,
        /// Offset from the table.
        offset: u32,
        /// Where it had to start.
        expected: u64,
    },
    /// A blob is shorter than an empty sealed blob.
    #[error("pack blob {id} is {length} bytes, shorter than the 45 bytes of an empty sealed blob")]
    BlobTooSmall {
        /// The blob's id.
        id: BlobId,
        /// Its length.
        length: u32,
    },
    /// The blobs end before (or after) the table starts.
    #[error("pack blobs end at {end}, but the table starts at {table_offset}")]
    BlobsDoNotFillPack {
        /// End of the last blob.
        end: u64,
        /// Table offset.
        table_offset: u64,
    },
    /// A blob id appears twice.
    #[error("blob {0} appears twice in one pack")]
    DuplicateBlob(BlobId),
    /// A tree's references are not strictly increasing.
    #[error("pack blob {0}: references must be sorted and unique")]
    RefsNotSorted(BlobId),
    /// A data blob was given references.
    #[error("data blob {0} cannot reference other blobs")]
    DataBlobWithRefs(BlobId),
    /// A sealed blob's own header is malformed or disagrees with the table's kind.
    #[error("pack blob {id}: {problem}")]
    BadBlobHeader {
        /// The blob's id.
        id: BlobId,
        /// What is wrong with its header.
        problem: String,
    },
    /// Bytes follow the last table entry.
    #[error("pack table has {0} unexpected bytes after its last entry")]
    TrailingTableBytes(usize),
    /// Adding a blob would take the pack past [`MAX_PACK_SIZE`].
    #[error("adding blob {id} would make the pack {size} bytes, more than the 128 MiB maximum")]
    PackFull {
        /// The blob that did not fit.
        id: BlobId,
        /// The size the pack would have had.
        size: u64,
    },
    /// The pack bytes do not hash to the expected pack id.
    #[error("pack content does not match its id {expected} (it hashes to {actual})")]
    PackIdMismatch {
        /// The id the pack was named with.
        expected: PackId,
        /// The hash of the bytes.
        actual: PackId,
    },
}

impl From<PackError> for crate::error::Error {
    fn from(err: PackError) -> Self {
        use crate::error::ErrorKind;
        let kind = match err {
            PackError::UnsupportedVersion(_) => ErrorKind::Unsupported,
            PackError::DataBlobWithRefs(_) | PackError::PackFull { .. } => ErrorKind::Invalid,
            _ => ErrorKind::Corrupt,
        };
        Self::new(kind, err)
    }
}

impl From<crate::wire::Truncated> for PackError {
    fn from(t: crate::wire::Truncated) -> Self {
        Self::Truncated {
            what: t.what,
            needed: t.needed,
            remaining: t.remaining,
        }
    }
}

/// The fixed-size start of a pack.
///
/// ```text
/// 0  4  magic "STWP"
/// 4  1  version = 1
/// 5  3  reserved, zero
/// 8  80 SealedDataKey
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackHeader {
    /// The pack's data key, sealed to the tenant's recovery public key.
    pub sealed_key: SealedDataKey,
}

impl PackHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; PACK_HEADER_LEN] {
        let mut out = [0u8; PACK_HEADER_LEN];
        out[..4].copy_from_slice(&PACK_MAGIC);
        out[4] = PACK_VERSION;
        out[8..].copy_from_slice(self.sealed_key.as_bytes());
        out
    }

    /// Parses the first [`PACK_HEADER_LEN`] bytes of a pack (longer input is fine: only the start is read).
    ///
    /// # Errors
    ///
    /// `Truncated`, `BadMagic`, `UnsupportedVersion` or `ReservedNotZero`.
    pub fn decode(bytes: &[u8]) -> Result<Self, PackError> {
        let mut cursor = crate::wire::Cursor::new(bytes);
        let magic = cursor.array::<4>("pack header")?;
        if magic != PACK_MAGIC {
            return Err(PackError::BadMagic {
                part: "header",
                found: magic,
                expected: "STWP",
            });
        }
        let version = cursor.u8("pack version")?;
        if version != PACK_VERSION {
            return Err(PackError::UnsupportedVersion(version));
        }
        let reserved = cursor.array::<3>("pack reserved bytes")?;
        if reserved != [0; 3] {
            return Err(PackError::ReservedNotZero(reserved));
        }
        let sealed_key = SealedDataKey::from_bytes(cursor.array("sealed data key")?);
        Ok(Self { sealed_key })
    }
}

/// Checks that a sealed blob's plaintext header (magic, version, flags) is
/// well formed and names the same kind as the table. `sealed` may be just
/// the blob's first [`SEALED_BLOB_OVERHEAD`](crate::blob::SEALED_BLOB_OVERHEAD)
/// bytes (all a blob shorter than that has), which is all the check reads:
/// the server checks every blob of an uploaded pack this way without
/// reading the ciphertext.
///
/// # Errors
///
/// [`PackError::BadBlobHeader`] naming the blob and the problem.
pub fn check_blob_header(kind: BlobKind, id: &BlobId, sealed: &[u8]) -> Result<(), PackError> {
    let header = BlobHeader::parse(id, sealed).map_err(|err| PackError::BadBlobHeader {
        id: *id,
        problem: err.to_string(),
    })?;
    if header.kind != kind {
        return Err(PackError::BadBlobHeader {
            id: *id,
            problem: format!(
                "the table says {kind} but the blob header says {}",
                header.kind
            ),
        });
    }
    Ok(())
}

/// Checks that `bytes` hash to `expected`.
///
/// # Errors
///
/// [`PackError::PackIdMismatch`] naming both ids.
pub fn verify_pack_id(bytes: &[u8], expected: &PackId) -> Result<(), PackError> {
    let actual = PackId::digest(bytes);
    if actual != *expected {
        return Err(PackError::PackIdMismatch {
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_rejects_each_wrong_field() {
        let header = PackHeader {
            sealed_key: SealedDataKey::from_bytes([9; SEALED_DATA_KEY_LEN]),
        };
        let bytes = header.encode();
        assert_eq!(&bytes[..8], b"STWP\x01\0\0\0");
        assert_eq!(PackHeader::decode(&bytes), Ok(header));
        let mut magic = bytes;
        magic[3] = b'X';
        assert!(matches!(
            PackHeader::decode(&magic),
            Err(PackError::BadMagic { .. })
        ));
        let mut version = bytes;
        version[4] = 2;
        assert_eq!(
            PackHeader::decode(&version),
            Err(PackError::UnsupportedVersion(2))
        );
        let mut reserved = bytes;
        reserved[6] = 1;
        assert_eq!(
            PackHeader::decode(&reserved),
            Err(PackError::ReservedNotZero([0, 1, 0]))
        );
        assert!(matches!(
            PackHeader::decode(&bytes[..87]),
            Err(PackError::Truncated { .. })
        ));
    }

    #[test]
    fn a_pack_id_mismatch_names_both_ids() {
        let right = PackId::digest(b"pack");
        assert_eq!(verify_pack_id(b"pack", &right), Ok(()));
        let err = verify_pack_id(b"pacK", &right).unwrap_err();
        assert!(err.to_string().contains(&right.to_string()), "{err}");
    }
}
