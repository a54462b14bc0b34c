//! Pack data keys and their sealing to the tenant's recovery public key.

use chacha20poly1305::AeadInOut;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{CryptoError, PACK_KEY_SEAL_CONTEXT, RecoveryPublicKey, RecoverySecret, cipher};
use crate::ids::os_random;

/// Length of a [`SealedDataKey`]: ephemeral public key (32) + sealed key (32) + tag (16).
pub const SEALED_DATA_KEY_LEN: usize = 80;

/// The zero nonce: safe because every sealing KEK comes from a fresh ephemeral key.
const ZERO_NONCE: [u8; 24] = [0; 24];

/// A pack's random data key: encrypts every blob of that pack.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// Wraps 32 key bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the OS random source.
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn random() -> Self {
        Self(os_random())
    }

    /// The 32 key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A pack's data key sealed to the tenant's recovery public key.
///
/// ```text
/// 0   32 ephemeral X25519 public key
/// 32  48 XChaCha20-Poly1305(data_key[32], tag 16), nonce = 24 zero bytes
/// ```
/// `kek = blake3::derive_key(PACK_KEY_SEAL_CONTEXT, dh || eph_pub || recipient_pub)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealedDataKey([u8; SEALED_DATA_KEY_LEN]);

impl SealedDataKey {
    /// Wraps the 80 stored bytes.
    pub const fn from_bytes(bytes: [u8; SEALED_DATA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 80 stored bytes.
    pub const fn as_bytes(&self) -> &[u8; SEALED_DATA_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for SealedDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedDataKey({})", hex::encode(self.0))
    }
}

/// The one-time key that encrypts a data key, from the X25519 exchange.
fn seal_kek(
    shared: &x25519_dalek::SharedSecret,
    ephemeral_public: &[u8; 32],
    recipient: &RecoveryPublicKey,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    if !shared.was_contributory() {
        let point = RecoveryPublicKey::from_bytes(*ephemeral_public);
        return Err(CryptoError::LowOrderPoint(point));
    }
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared.as_bytes());
    material[32..64].copy_from_slice(ephemeral_public);
    material[64..].copy_from_slice(recipient.as_bytes());
    Ok(Zeroizing::new(blake3::derive_key(
        PACK_KEY_SEAL_CONTEXT,
        &*material,
    )))
}

/// Seals `data_key` to `recipient` using the given ephemeral secret bytes.
///
/// Deterministic core of [`seal_data_key_random`]; never reuse an ephemeral secret.
///
/// # Errors
///
/// [`CryptoError::LowOrderPoint`] when `recipient` is a low-order point.
pub fn seal_data_key(
    data_key: &DataKey,
    recipient: &RecoveryPublicKey,
    ephemeral_secret: [u8; 32],
) -> Result<SealedDataKey, CryptoError> {
    let ephemeral = x25519_dalek::StaticSecret::from(ephemeral_secret);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(*recipient.as_bytes()));
    let kek = seal_kek(&shared, &ephemeral_public, recipient)
        .map_err(|_| CryptoError::LowOrderPoint(*recipient))?;

    let mut out = [0u8; SEALED_DATA_KEY_LEN];
    out[..32].copy_from_slice(&ephemeral_public);
    out[32..64].copy_from_slice(data_key.as_bytes());
    let tag = cipher(&kek)
        .encrypt_inout_detached(&ZERO_NONCE.into(), &[], (&mut out[32..64]).into())
        .expect("a 32-byte message is far below the AEAD length limit");
    out[64..].copy_from_slice(&tag);
    Ok(SealedDataKey(out))
}

/// Seals `data_key` to `recipient` with a fresh random ephemeral key.
///
/// # Errors
///
/// [`CryptoError::LowOrderPoint`] when `recipient` is a low-order point.
///
/// # Panics
///
/// Panics if the OS random source fails.
pub fn seal_data_key_random(
    data_key: &DataKey,
    recipient: &RecoveryPublicKey,
) -> Result<SealedDataKey, CryptoError> {
    let ephemeral = Zeroizing::new(os_random::<32>());
    seal_data_key(data_key, recipient, *ephemeral)
}

/// Opens a sealed data key with the tenant's recovery secret.
///
/// # Errors
///
/// [`CryptoError::DataKeyRejected`] when the tag does not verify (another
/// tenant's key or a damaged header); [`CryptoError::LowOrderPoint`] when
/// the stored ephemeral key is a low-order point.
pub fn open_data_key(
    sealed: &SealedDataKey,
    secret: &RecoverySecret,
) -> Result<DataKey, CryptoError> {
    let bytes = sealed.as_bytes();
    let mut ephemeral_public = [0u8; 32];
    ephemeral_public.copy_from_slice(&bytes[..32]);
    let shared = secret.diffie_hellman(&RecoveryPublicKey::from_bytes(ephemeral_public));
    let kek = seal_kek(&shared, &ephemeral_public, &secret.public_key())?;

    let mut key = DataKey([0u8; 32]);
    key.0.copy_from_slice(&bytes[32..64]);
    let tag = chacha20poly1305::Tag::try_from(&bytes[64..]).expect("the tag is 16 bytes");
    cipher(&kek)
        .decrypt_inout_detached(&ZERO_NONCE.into(), &[], (&mut key.0[..]).into(), &tag)
        .map_err(|_| CryptoError::DataKeyRejected)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_data_key_opens_with_the_matching_secret() {
        // Arrange
        let secret = RecoverySecret::from_bytes([7; 32]);
        let data_key = DataKey::from_bytes([42; 32]);

        // Act
        let sealed = seal_data_key_random(&data_key, &secret.public_key()).unwrap();
        let opened = open_data_key(&sealed, &secret).unwrap();

        // Assert
        assert_eq!(opened.as_bytes(), data_key.as_bytes());
    }

    #[test]
    fn another_tenants_secret_is_rejected() {
        let sealed =
            seal_data_key_random(&DataKey::random(), &RecoverySecret::random().public_key())
                .unwrap();
        let err = open_data_key(&sealed, &RecoverySecret::random()).unwrap_err();
        assert!(matches!(err, CryptoError::DataKeyRejected), "{err}");
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let secret = RecoverySecret::from_bytes([3; 32]);
        let sealed =
            seal_data_key(&DataKey::from_bytes([1; 32]), &secret.public_key(), [5; 32]).unwrap();
        for bit in 0..SEALED_DATA_KEY_LEN * 8 {
            let mut bytes = *sealed.as_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(
                open_data_key(&SealedDataKey::from_bytes(bytes), &secret).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn a_low_order_recipient_is_refused() {
        let zero_point = RecoveryPublicKey::from_bytes([0; 32]);
        let err = seal_data_key(&DataKey::random(), &zero_point, [5; 32]).unwrap_err();
        assert!(matches!(err, CryptoError::LowOrderPoint(_)), "{err}");
    }

    #[test]
    fn a_low_order_ephemeral_key_is_refused_on_open() {
        let mut bytes = [0u8; SEALED_DATA_KEY_LEN];
        bytes[0] = 1; // u = 1 is a low-order point
        let err = open_data_key(&SealedDataKey::from_bytes(bytes), &RecoverySecret::random())
            .unwrap_err();
        assert!(matches!(err, CryptoError::LowOrderPoint(_)), "{err}");
    }

    #[test]
    fn data_keys_are_redacted_in_debug_output() {
        assert_eq!(
            format!("{:?}", DataKey::from_bytes([1; 32])),
            "DataKey(<redacted>)"
        );
    }
}
