//! Sealing: compress (when it helps), then encrypt in place.

use std::io::Cursor;

use chacha20poly1305::AeadInOut;

use super::{
    BLOB_MAGIC, BLOB_VERSION, BlobError, BlobKind, FLAG_ZSTD, SEALED_BLOB_OVERHEAD, associated_data,
};
use crate::crypto::{DataKey, cipher};
use crate::ids::{BlobId, os_random};

/// Whether and how hard to zstd-compress blobs before sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression(Option<i32>);

impl Compression {
    /// Store plaintext as is.
    pub const NONE: Self = Self(None);
    /// zstd level 3, zstd's own default (new repositories name
    /// [`crate::config::DEFAULT_ZSTD_LEVEL`] in their config).
    pub const DEFAULT: Self = Self(Some(3));

    /// zstd at `level` (zstd's own range, negative levels included).
    ///
    /// # Errors
    ///
    /// [`BlobError::InvalidZstdLevel`] outside zstd's range.
    pub fn zstd(level: i32) -> Result<Self, BlobError> {
        let range = zstd::compression_level_range();
        if range.contains(&level) {
            Ok(Self(Some(level)))
        } else {
            Err(BlobError::InvalidZstdLevel {
                level,
                min: *range.start(),
                max: *range.end(),
            })
        }
    }

    /// The zstd level, or `None` for no compression.
    pub const fn level(self) -> Option<i32> {
        self.0
    }
}

impl Default for Compression {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Seals blobs, reusing one zstd context across calls (the fast path for backups).
pub struct BlobSealer {
    /// `None` when compression is off.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl BlobSealer {
    /// A sealer compressing as `compression` says.
    ///
    /// # Panics
    ///
    /// Panics if zstd cannot allocate its context.
    pub fn new(compression: Compression) -> Self {
        let compressor = compression.level().map(|level| {
            zstd::bulk::Compressor::new(level).expect("zstd allocates a compression context")
        });
        Self { compressor }
    }

    /// Appends the sealed form of `plaintext` to `out` and returns its length.
    ///
    /// Deterministic for a given nonce; never reuse a nonce under one data key.
    pub fn seal_into(
        &mut self,
        data_key: &DataKey,
        id: &BlobId,
        kind: BlobKind,
        plaintext: &[u8],
        nonce: [u8; 24],
        out: &mut Vec<u8>,
    ) -> usize {
        let start = out.len();
        let header_end = start + super::BLOB_HEADER_LEN;
        let bound = if self.compressor.is_some() {
            zstd::zstd_safe::compress_bound(plaintext.len())
        } else {
            plaintext.len()
        };
        out.reserve(SEALED_BLOB_OVERHEAD + bound);
        out.extend_from_slice(&BLOB_MAGIC);
        out.extend_from_slice(&[BLOB_VERSION, kind.as_u8(), 0]);
        out.extend_from_slice(&nonce);

        if self.compress_into(plaintext, out) {
            out[start + 4] = FLAG_ZSTD;
        } else {
            out.truncate(header_end);
            out.extend_from_slice(plaintext);
        }

        let (head, body) = out[start..].split_at_mut(super::BLOB_HEADER_LEN);
        let ad = associated_data(head, id);
        let tag = cipher(data_key.as_bytes())
            .encrypt_inout_detached(&nonce.into(), &ad, body.into())
            .expect("a blob is far below the AEAD length limit");
        out.extend_from_slice(&tag);
        out.len() - start
    }

    /// Compresses `plaintext` onto the end of `out`; true if that made it smaller.
    fn compress_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(compressor) = self.compressor.as_mut() else {
            return false;
        };
        let position = out.len() as u64;
        let mut cursor = Cursor::new(&mut *out);
        cursor.set_position(position);
        // An error (never expected with a big enough buffer) just means: store as is.
        matches!(compressor.compress_to_buffer(plaintext, &mut cursor), Ok(n) if n < plaintext.len())
    }

    /// The sealed form of `plaintext` with the given nonce.
    pub fn seal(
        &mut self,
        data_key: &DataKey,
        id: &BlobId,
        kind: BlobKind,
        plaintext: &[u8],
        nonce: [u8; 24],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.seal_into(data_key, id, kind, plaintext, nonce, &mut out);
        out
    }

    /// The sealed form of `plaintext` with a random nonce.
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn seal_random(
        &mut self,
        data_key: &DataKey,
        id: &BlobId,
        kind: BlobKind,
        plaintext: &[u8],
    ) -> Vec<u8> {
        self.seal(data_key, id, kind, plaintext, os_random())
    }
}

impl std::fmt::Debug for BlobSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobSealer")
            .field("compressing", &self.compressor.is_some())
            .finish()
    }
}

/// Seals one blob with the given nonce (deterministic; for tests and one-offs).
///
/// # Panics
///
/// Panics if zstd cannot allocate its context.
pub fn seal_blob(
    data_key: &DataKey,
    id: &BlobId,
    kind: BlobKind,
    plaintext: &[u8],
    compression: Compression,
    nonce: [u8; 24],
) -> Vec<u8> {
    BlobSealer::new(compression).seal(data_key, id, kind, plaintext, nonce)
}

/// Appends one sealed blob to `out` and returns its length.
///
/// Builds a zstd context per call, which costs 5–9% of pipeline throughput
/// (measured by `benches/pipeline.rs`): for tests and one-offs; a backup keeps
/// one [`BlobSealer`] per worker thread.
///
/// # Panics
///
/// Panics if zstd cannot allocate its context.
pub fn seal_blob_into(
    out: &mut Vec<u8>,
    data_key: &DataKey,
    id: &BlobId,
    kind: BlobKind,
    plaintext: &[u8],
    compression: Compression,
    nonce: [u8; 24],
) -> usize {
    BlobSealer::new(compression).seal_into(data_key, id, kind, plaintext, nonce, out)
}

/// Seals one blob with a random nonce.
///
/// # Panics
///
/// Panics if zstd cannot allocate its context or the OS random source fails.
pub fn seal_blob_random(
    data_key: &DataKey,
    id: &BlobId,
    kind: BlobKind,
    plaintext: &[u8],
    compression: Compression,
) -> Vec<u8> {
    seal_blob(data_key, id, kind, plaintext, compression, os_random())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{BLOB_HEADER_LEN, BlobHeader};

    fn key() -> DataKey {
        DataKey::from_bytes([1; 32])
    }

    #[test]
    fn compressible_data_is_stored_compressed() {
        let id = BlobId::from_bytes([2; 32]);
        let sealed = seal_blob(
            &key(),
            &id,
            BlobKind::Data,
            &[b'a'; 10_000],
            Compression::DEFAULT,
            [0; 24],
        );
        assert!(sealed.len() < 200, "{}", sealed.len());
        assert!(BlobHeader::parse(&id, &sealed).unwrap().compressed);
    }

    #[test]
    fn incompressible_data_is_stored_as_is() {
        let id = BlobId::from_bytes([2; 32]);
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| blake3::hash(&i.to_le_bytes()).as_bytes()[0])
            .collect();
        let sealed = seal_blob(
            &key(),
            &id,
            BlobKind::Data,
            &noise,
            Compression::DEFAULT,
            [0; 24],
        );
        assert_eq!(sealed.len(), noise.len() + SEALED_BLOB_OVERHEAD);
        assert!(!BlobHeader::parse(&id, &sealed).unwrap().compressed);
    }

    #[test]
    fn seal_into_appends_after_existing_bytes() {
        let id = BlobId::from_bytes([3; 32]);
        let mut out = b"prefix".to_vec();
        let len = seal_blob_into(
            &mut out,
            &key(),
            &id,
            BlobKind::Tree,
            b"tree",
            Compression::NONE,
            [9; 24],
        );
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(len, 4 + SEALED_BLOB_OVERHEAD);
        assert_eq!(
            out[6..],
            seal_blob(
                &key(),
                &id,
                BlobKind::Tree,
                b"tree",
                Compression::NONE,
                [9; 24]
            )
        );
        assert_eq!(&out[6 + 5..6 + BLOB_HEADER_LEN], &[9; 24]);
    }

    #[test]
    fn zstd_levels_outside_its_range_are_refused() {
        assert!(Compression::zstd(19).is_ok());
        let err = Compression::zstd(1000).unwrap_err();
        assert!(
            err.to_string().starts_with("zstd level 1000 is outside"),
            "{err}"
        );
    }
}
