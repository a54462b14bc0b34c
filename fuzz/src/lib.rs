//! Fixtures shared by the fuzz targets and the seed generator.
//!
//! The keys are the known-answer tests' keys (`counting_bytes` in
//! `protocol/tests/kat_support`), so the vector files in
//! `protocol/tests/vectors/` are valid inputs for the harnesses as they are:
//! the fuzzer starts from blobs that open and packs that parse, instead of
//! spending its time on the magic bytes.

pub mod peak_alloc;

use chacha20poly1305::{AeadInOut, KeyInit, XChaCha20Poly1305};
use stowage_protocol::blob::{BLOB_MAGIC, BLOB_VERSION};
use stowage_protocol::crypto::{DataKey, IdKey, RecoverySecret};
use stowage_protocol::ids::BlobId;

/// Bytes `start`, `start + 1`, … (wrapping), as the known-answer tests build keys.
pub fn counting_bytes<const N: usize>(start: u8) -> [u8; N] {
    core::array::from_fn(|i| start.wrapping_add(u8::try_from(i % 256).expect("below 256")))
}

/// The data key of the blob vectors.
pub fn data_key() -> DataKey {
    DataKey::from_bytes(counting_bytes(0x80))
}

/// The id key of the blob, tree and crypto vectors.
pub fn id_key() -> IdKey {
    IdKey::from_bytes(counting_bytes(0))
}

/// The recovery secret whose public key the sealed-data-key vector is sealed to.
pub fn recovery_secret() -> RecoverySecret {
    RecoverySecret::from_bytes(counting_bytes(0x40))
}

/// The id every forged blob is opened under.
pub fn forged_id() -> BlobId {
    BlobId::from_bytes([0x5a; 32])
}

/// The nonce of forged and harness-sealed blobs (fixed: determinism beats
/// nonce hygiene in a fuzz loop that never stores anything).
pub const FUZZ_NONCE: [u8; 24] = [0x24; 24];

/// A sealed blob with header bytes `kind` and `flags` whose ciphertext is
/// `body` encrypted as is under [`data_key`] and [`forged_id`].
///
/// This is what only a holder of the data key could produce, and more than
/// the sealer would ever write (unknown flags, bodies longer than their
/// decompressed form, arbitrary zstd frames): the opener's checks after
/// authentication (kind, size cap, decompression) only see fuzzer bytes
/// through here, because no mutation of a real blob survives the tag.
pub fn forge_blob(kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(29 + body.len() + 16);
    sealed.extend_from_slice(&BLOB_MAGIC);
    sealed.extend_from_slice(&[BLOB_VERSION, kind, flags]);
    sealed.extend_from_slice(&FUZZ_NONCE);
    let mut ad = [0u8; 37];
    ad[..5].copy_from_slice(&sealed[..5]);
    ad[5..].copy_from_slice(forged_id().as_bytes());
    let mut ciphertext = body.to_vec();
    let cipher = XChaCha20Poly1305::new(&(*data_key().as_bytes()).into());
    let tag = cipher
        .encrypt_inout_detached(&FUZZ_NONCE.into(), &ad, ciphertext.as_mut_slice().into())
        .expect("a fuzz input is far below the AEAD length limit");
    sealed.extend_from_slice(&ciphertext);
    sealed.extend_from_slice(&tag);
    sealed
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_protocol::blob::{BlobKind, Compression, open_blob, seal_blob};

    #[test]
    fn a_forged_blob_with_plain_flags_opens_like_a_sealed_one() {
        let forged = forge_blob(BlobKind::Tree.as_u8(), 0, b"tree bytes");
        let sealed = seal_blob(
            &data_key(),
            &forged_id(),
            BlobKind::Tree,
            b"tree bytes",
            Compression::NONE,
            FUZZ_NONCE,
        );
        assert_eq!(forged, sealed);
        assert_eq!(
            open_blob(&data_key(), &forged_id(), BlobKind::Tree, &forged, 100).unwrap(),
            b"tree bytes"
        );
    }

    #[test]
    fn counting_bytes_wrap_around() {
        assert_eq!(counting_bytes::<3>(0xfe), [0xfe, 0xff, 0x00]);
    }
}
