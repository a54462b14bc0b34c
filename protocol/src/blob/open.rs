//! Opening: check the header and the tag, then decompress within a cap.

use chacha20poly1305::AeadInOut;

use super::{BLOB_HEADER_LEN, BLOB_TAG_LEN, BlobError, BlobHeader, BlobKind, associated_data};
use crate::crypto::{DataKey, IdKey, cipher};
use crate::ids::BlobId;

/// Opens blobs, reusing one zstd context across calls (the fast path for restores).
pub struct BlobOpener {
    /// Reused between blobs to avoid reallocating its tables.
    decompressor: zstd::bulk::Decompressor<'static>,
    /// Reused buffer for a compressed blob's decrypted body.
    compressed: Vec<u8>,
}

impl BlobOpener {
    /// A fresh opener.
    ///
    /// # Panics
    ///
    /// Panics if zstd cannot allocate its context.
    pub fn new() -> Self {
        Self {
            decompressor: zstd::bulk::Decompressor::new()
                .expect("zstd allocates a decompression context"),
            compressed: Vec::new(),
        }
    }

    /// Authenticates and decrypts the sealed blob `id`, checking that it is
    /// of `expected_kind` and that its plaintext is at most
    /// `max_plaintext_len` bytes. No allocation exceeds that maximum.
    ///
    /// This does not re-hash the plaintext (the server has no id key); the
    /// agent should call [`verify_blob_id`] too.
    ///
    /// # Errors
    ///
    /// The [`BlobError`] naming the first failed check: header
    /// ([`BlobHeader::parse`]), [`BlobError::WrongKind`],
    /// [`BlobError::TooLarge`], [`BlobError::Authentication`] or
    /// [`BlobError::Decompress`] (also for a decompression bomb).
    pub fn open(
        &mut self,
        data_key: &DataKey,
        id: &BlobId,
        expected_kind: BlobKind,
        sealed: &[u8],
        max_plaintext_len: usize,
    ) -> Result<Vec<u8>, BlobError> {
        let mut plain = Vec::new();
        self.open_into(
            data_key,
            id,
            expected_kind,
            sealed,
            max_plaintext_len,
            &mut plain,
        )?;
        Ok(plain)
    }

    /// [`Self::open`] into `plain` (cleared first), so a caller opening many
    /// blobs reuses one buffer: the plaintext is written where it will be
    /// read, and memory stays at one blob's worth however many are opened.
    /// A compressed body is decompressed into exactly the size its zstd
    /// frame declares (never more than `max_plaintext_len`).
    ///
    /// # Errors
    ///
    /// As [`Self::open`].
    pub fn open_into(
        &mut self,
        data_key: &DataKey,
        id: &BlobId,
        expected_kind: BlobKind,
        sealed: &[u8],
        max_plaintext_len: usize,
        plain: &mut Vec<u8>,
    ) -> Result<(), BlobError> {
        plain.clear();
        let header = BlobHeader::parse(id, sealed)?;
        if header.kind != expected_kind {
            return Err(BlobError::WrongKind {
                id: *id,
                expected: expected_kind,
                found: header.kind,
            });
        }
        // Compression is only kept when it shrinks, so the ciphertext is never
        // longer than the plaintext: this bounds the copy below.
        let body_len = sealed.len() - BLOB_HEADER_LEN - BLOB_TAG_LEN;
        if body_len > max_plaintext_len {
            return Err(BlobError::TooLarge {
                id: *id,
                len: body_len,
                max: max_plaintext_len,
            });
        }

        let (body, tag) = sealed[BLOB_HEADER_LEN..].split_at(body_len);
        let tag = chacha20poly1305::Tag::try_from(tag).expect("the tag is 16 bytes");
        let decrypted = if header.compressed {
            &mut self.compressed
        } else {
            &mut *plain
        };
        decrypted.clear();
        decrypted.extend_from_slice(body);
        cipher(data_key.as_bytes())
            .decrypt_inout_detached(
                &header.nonce.into(),
                &associated_data(sealed, id),
                decrypted.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| BlobError::Authentication { id: *id })?;
        if !header.compressed {
            return Ok(());
        }
        let bomb = |reason: String| BlobError::Decompress {
            id: *id,
            max: max_plaintext_len,
            reason,
        };
        // The frame's declared size, when it has one, is the exact size to
        // reserve; a declared size over the cap is refused before any
        // allocation, and a frame declaring less than it holds fails below.
        let capacity = match zstd::zstd_safe::get_frame_content_size(&self.compressed) {
            Ok(Some(declared)) if declared > max_plaintext_len as u64 => {
                return Err(bomb(format!("its frame declares {declared} bytes")));
            }
            Ok(Some(declared)) => usize::try_from(declared).unwrap_or(max_plaintext_len),
            _ => max_plaintext_len,
        };
        plain.reserve_exact(capacity);
        self.decompressor
            .decompress_to_buffer(&self.compressed, plain)
            .map_err(|err| bomb(err.to_string()))?;
        // A reused buffer may be larger than this call's cap.
        if plain.len() > max_plaintext_len {
            let len = plain.len();
            plain.clear();
            return Err(bomb(format!("it opens to {len} bytes")));
        }
        Ok(())
    }
}

impl Default for BlobOpener {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BlobOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobOpener").finish_non_exhaustive()
    }
}

/// Opens one sealed blob; see [`BlobOpener::open`].
///
/// # Errors
///
/// As [`BlobOpener::open`].
///
/// # Panics
///
/// Panics if zstd cannot allocate its context.
pub fn open_blob(
    data_key: &DataKey,
    id: &BlobId,
    expected_kind: BlobKind,
    sealed: &[u8],
    max_plaintext_len: usize,
) -> Result<Vec<u8>, BlobError> {
    BlobOpener::new().open(data_key, id, expected_kind, sealed, max_plaintext_len)
}

/// Checks that `plaintext` hashes to `id` under the tenant's id key.
///
/// # Errors
///
/// [`BlobError::ContentMismatch`] ("blob … content does not match its id").
pub fn verify_blob_id(
    id_key: &IdKey,
    id: &BlobId,
    kind: BlobKind,
    plaintext: &[u8],
) -> Result<(), BlobError> {
    if id_key.blob_id(kind, plaintext) == *id {
        Ok(())
    } else {
        Err(BlobError::ContentMismatch { id: *id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{Compression, FLAG_ZSTD, seal_blob};
    use chacha20poly1305::AeadInOut;

    fn key() -> DataKey {
        DataKey::from_bytes([5; 32])
    }

    #[test]
    fn a_sealed_blob_opens_to_its_plaintext() {
        // Arrange
        let id = BlobId::from_bytes([1; 32]);
        let plaintext = b"hello hello hello hello hello hello".repeat(100);
        let sealed = seal_blob(
            &key(),
            &id,
            BlobKind::Data,
            &plaintext,
            Compression::DEFAULT,
            [7; 24],
        );

        // Act
        let opened = open_blob(&key(), &id, BlobKind::Data, &sealed, plaintext.len()).unwrap();

        // Assert
        assert_eq!(opened, plaintext);
    }

    #[test]
    fn a_plaintext_over_the_limit_is_refused() {
        let id = BlobId::from_bytes([1; 32]);
        for compression in [Compression::NONE, Compression::DEFAULT] {
            let sealed = seal_blob(
                &key(),
                &id,
                BlobKind::Data,
                &[0; 1000],
                compression,
                [7; 24],
            );
            let err = open_blob(&key(), &id, BlobKind::Data, &sealed, 999).unwrap_err();
            assert!(
                matches!(
                    err,
                    BlobError::TooLarge { .. } | BlobError::Decompress { .. }
                ),
                "{err}"
            );
        }
    }

    /// A data blob sealed by hand around `body`, flagged as zstd whatever it
    /// holds: how an attacker with the data key would forge a bomb.
    fn forge_compressed(id: &BlobId, nonce: [u8; 24], mut body: Vec<u8>) -> Vec<u8> {
        let mut sealed = b"SB".to_vec();
        sealed.extend_from_slice(&[1, BlobKind::Data.as_u8(), FLAG_ZSTD]);
        sealed.extend_from_slice(&nonce);
        let tag = cipher(key().as_bytes())
            .encrypt_inout_detached(
                &nonce.into(),
                &associated_data(&sealed, id),
                body.as_mut_slice().into(),
            )
            .unwrap();
        sealed.extend_from_slice(&body);
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// A zstd frame of `content` that does not declare its size, so the
    /// opener cannot size its buffer from the header.
    fn frame_without_size(content: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut frame, 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, content).unwrap();
        encoder.finish().unwrap();
        frame
    }

    #[test]
    fn a_decompression_bomb_fails_without_allocating_past_the_cap() {
        // Arrange: a validly sealed zstd frame of 64 MiB of zeros, hand-built
        // so the content-size check and the bounded buffer both get tested.
        let id = BlobId::from_bytes([4; 32]);
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).unwrap();
        let sealed = forge_compressed(&id, [3; 24], bomb.clone());

        // Act
        let err = open_blob(&key(), &id, BlobKind::Data, &sealed, 1 << 20).unwrap_err();

        // Assert
        assert!(
            matches!(err, BlobError::Decompress { max: 1_048_576, .. }),
            "{err}"
        );
        assert!(bomb.len() < 1 << 20);
    }

    #[test]
    fn a_frame_without_content_size_is_still_capped() {
        let id = BlobId::from_bytes([4; 32]);
        let sealed = forge_compressed(&id, [0; 24], frame_without_size(&vec![0u8; 4 << 20]));

        assert!(open_blob(&key(), &id, BlobKind::Data, &sealed, 1 << 20).is_err());
        assert_eq!(
            open_blob(&key(), &id, BlobKind::Data, &sealed, 4 << 20)
                .unwrap()
                .len(),
            4 << 20
        );
    }

    #[test]
    fn one_buffer_serves_many_blobs_and_a_big_reused_buffer_does_not_lift_the_cap() {
        // Arrange: a compressed blob, a stored (incompressible) one, and a
        // frame without a content size, all opened into one buffer.
        let mut opener = BlobOpener::new();
        let mut plain = Vec::new();
        let big_id = BlobId::from_bytes([1; 32]);
        let big = b"restore me ".repeat(100_000);
        let big_sealed = seal_blob(
            &key(),
            &big_id,
            BlobKind::Data,
            &big,
            Compression::DEFAULT,
            [1; 24],
        );
        let small_id = BlobId::from_bytes([2; 32]);
        let small: Vec<u8> = (0..512u32)
            .map(|i| blake3::hash(&i.to_le_bytes()).as_bytes()[0])
            .collect();
        let small_sealed = seal_blob(
            &key(),
            &small_id,
            BlobKind::Data,
            &small,
            Compression::DEFAULT,
            [2; 24],
        );
        let unsized_id = BlobId::from_bytes([3; 32]);
        let unsized_sealed = forge_compressed(
            &unsized_id,
            [0; 24],
            frame_without_size(&vec![7u8; 300_000]),
        );

        // Act + Assert: each opening leaves exactly its plaintext.
        opener
            .open_into(
                &key(),
                &big_id,
                BlobKind::Data,
                &big_sealed,
                2 << 20,
                &mut plain,
            )
            .unwrap();
        assert_eq!(plain, big);
        opener
            .open_into(
                &key(),
                &small_id,
                BlobKind::Data,
                &small_sealed,
                2 << 20,
                &mut plain,
            )
            .unwrap();
        assert_eq!(plain, small);
        // The buffer now holds over a megabyte of capacity; a 300 kB frame
        // without a declared size must still fail a 100 kB cap.
        assert!(plain.capacity() > 1 << 20);
        let err = opener
            .open_into(
                &key(),
                &unsized_id,
                BlobKind::Data,
                &unsized_sealed,
                100_000,
                &mut plain,
            )
            .unwrap_err();
        assert!(
            matches!(err, BlobError::Decompress { max: 100_000, .. }),
            "{err}"
        );
        assert!(plain.is_empty());
        opener
            .open_into(
                &key(),
                &unsized_id,
                BlobKind::Data,
                &unsized_sealed,
                300_000,
                &mut plain,
            )
            .unwrap();
        assert_eq!(plain, vec![7u8; 300_000]);
    }

    #[test]
    fn a_blob_opened_under_another_id_or_kind_is_refused() {
        let id = BlobId::from_bytes([1; 32]);
        let sealed = seal_blob(
            &key(),
            &id,
            BlobKind::Tree,
            b"tree bytes",
            Compression::DEFAULT,
            [7; 24],
        );
        let other = BlobId::from_bytes([2; 32]);
        assert!(matches!(
            open_blob(&key(), &other, BlobKind::Tree, &sealed, 100),
            Err(BlobError::Authentication { .. })
        ));
        let err = open_blob(&key(), &id, BlobKind::Data, &sealed, 100).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("sealed blob {id} is a tree blob, expected a data blob")
        );
    }

    #[test]
    fn verify_blob_id_rejects_content_that_does_not_hash_to_the_id() {
        let id_key = IdKey::from_bytes([8; 32]);
        let id = id_key.chunk_id(b"right");
        assert!(verify_blob_id(&id_key, &id, BlobKind::Data, b"right").is_ok());
        let err = verify_blob_id(&id_key, &id, BlobKind::Data, b"wrong").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("blob {id} content does not match its id")
        );
        assert!(verify_blob_id(&id_key, &id, BlobKind::Tree, b"right").is_err());
    }
}
