//! Opening: check the header and the tag, then decompress within a cap.

use chacha20poly1305::AeadInOut;

use super::{BLOB_HEADER_LEN, BLOB_TAG_LEN, BlobError, BlobHeader, BlobKind, associated_data};
use crate::crypto::{DataKey, IdKey, cipher};
use crate::ids::BlobId;

/// Opens blobs, reusing one zstd context across calls (the fast path for restores).
pub struct BlobOpener {
    /// Reused between blobs to avoid reallocating its tables.
    decompressor: zstd::bulk::Decompressor<'static>,
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
        let mut plain = body.to_vec();
        cipher(data_key.as_bytes())
            .decrypt_inout_detached(
                &header.nonce.into(),
                &associated_data(sealed, id),
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| BlobError::Authentication { id: *id })?;
        if !header.compressed {
            return Ok(plain);
        }
        self.decompressor
            .decompress(&plain, max_plaintext_len)
            .map_err(|err| BlobError::Decompress {
                id: *id,
                max: max_plaintext_len,
                reason: err.to_string(),
            })
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
        let mut frame = Vec::new();
        let mut encoder = zstd::stream::write::Encoder::new(&mut frame, 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut encoder, &vec![0u8; 4 << 20]).unwrap();
        encoder.finish().unwrap();
        let sealed = forge_compressed(&id, [0; 24], frame);

        assert!(open_blob(&key(), &id, BlobKind::Data, &sealed, 1 << 20).is_err());
        assert_eq!(
            open_blob(&key(), &id, BlobKind::Data, &sealed, 4 << 20)
                .unwrap()
                .len(),
            4 << 20
        );
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
