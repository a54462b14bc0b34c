//! Tenant keys wrapped under the recovery passphrase, stored on the server.

use chacha20poly1305::AeadInOut;
use zeroize::Zeroizing;

use super::{CryptoError, IdKey, RecoveryPublicKey, RecoverySecret, TenantKeys, cipher};
use crate::ids::os_random;

/// Magic of wrapped tenant keys. Never modify.
const MAGIC: [u8; 4] = *b"STWK";
/// Layout version of wrapped tenant keys. Never modify what version 1 means.
const VERSION: u8 = 1;
/// KDF number of argon2id (version 0x13). Never modify.
const KDF_ARGON2ID: u8 = 1;
/// Length of [`WrappedTenantKeys`].
pub const WRAPPED_TENANT_KEYS_LEN: usize = 170;
/// Bytes before the ciphertext; all of them are associated data.
const HEADER_LEN: usize = 90;

/// argon2id cost parameters, stored with the wrapped keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB; at least 64 MiB so a stolen blob is expensive to attack.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes
    /// (about 0.2 s on one core of a 2026 machine; lanes run sequentially here).
    pub const DEFAULT: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        parallelism: 4,
    };
    /// Smallest memory cost accepted, on wrap *and* on open: 64 MiB.
    pub const MIN_M_COST_KIB: u32 = 64 * 1024;
    /// Largest memory cost accepted (4 GiB), so a hostile blob cannot exhaust memory.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Largest time cost accepted.
    pub const MAX_T_COST: u32 = 64;
    /// Largest parallelism accepted.
    pub const MAX_PARALLELISM: u32 = 64;

    /// Checks every parameter against the accepted ranges.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KdfParamOutOfRange`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), CryptoError> {
        let check = |name, value, min, max| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(CryptoError::KdfParamOutOfRange {
                    name,
                    value,
                    min,
                    max,
                })
            }
        };
        check(
            "memory cost (KiB)",
            self.m_cost_kib,
            Self::MIN_M_COST_KIB,
            Self::MAX_M_COST_KIB,
        )?;
        check("time cost", self.t_cost, 1, Self::MAX_T_COST)?;
        check("parallelism", self.parallelism, 1, Self::MAX_PARALLELISM)
    }

    /// Runs argon2id over the passphrase; the caller has validated `self`.
    fn derive_kek(
        &self,
        passphrase: &[u8],
        salt: &[u8; 16],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.parallelism, Some(32))
            .map_err(|err| CryptoError::Kdf(err.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut kek = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, salt, &mut *kek)
            .map_err(|err| CryptoError::Kdf(err.to_string()))?;
        Ok(kek)
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The tenant's id key and recovery secret, encrypted under a key derived
/// from the recovery passphrase. 170 bytes:
///
/// ```text
/// 0   4  magic "STWK"
/// 4   1  version = 1
/// 5   1  kdf = 1 (argon2id, version 0x13)
/// 6   4  m_cost in KiB (u32 LE, 65536..=4194304)
/// 10  4  t_cost (u32 LE, 1..=64)
/// 14  4  parallelism (u32 LE, 1..=64)
/// 18  16 salt
/// 34  32 recovery public key
/// 66  24 nonce
/// 90  80 XChaCha20-Poly1305(id_key[32] || recovery_secret[32]) || tag[16]
/// ```
/// KEK = argon2id(passphrase, salt, params); associated data = bytes 0..90.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedTenantKeys([u8; WRAPPED_TENANT_KEYS_LEN]);

impl WrappedTenantKeys {
    /// Wraps `keys` under `passphrase` with the given salt and nonce.
    ///
    /// Deterministic core of [`WrappedTenantKeys::wrap_random`]; never reuse a salt or nonce.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KdfParamOutOfRange`] for parameters outside the accepted
    /// ranges; [`CryptoError::Kdf`] if argon2 cannot run.
    pub fn wrap(
        keys: &TenantKeys,
        passphrase: &[u8],
        params: KdfParams,
        salt: [u8; 16],
        nonce: [u8; 24],
    ) -> Result<Self, CryptoError> {
        params.validate()?;
        let kek = params.derive_kek(passphrase, &salt)?;

        let mut out = [0u8; WRAPPED_TENANT_KEYS_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KDF_ARGON2ID;
        out[6..10].copy_from_slice(&params.m_cost_kib.to_le_bytes());
        out[10..14].copy_from_slice(&params.t_cost.to_le_bytes());
        out[14..18].copy_from_slice(&params.parallelism.to_le_bytes());
        out[18..34].copy_from_slice(&salt);
        out[34..66].copy_from_slice(keys.public_key().as_bytes());
        out[66..90].copy_from_slice(&nonce);
        out[90..122].copy_from_slice(keys.id_key.as_bytes());
        out[122..154].copy_from_slice(&*keys.recovery_secret.to_bytes());

        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = cipher(&kek)
            .encrypt_inout_detached(&nonce.into(), header, (&mut body[..64]).into())
            .expect("a 64-byte message is far below the AEAD length limit");
        body[64..].copy_from_slice(&tag);
        Ok(Self(out))
    }

    /// Wraps `keys` under `passphrase` with a fresh random salt and nonce.
    ///
    /// # Errors
    ///
    /// As [`WrappedTenantKeys::wrap`].
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn wrap_random(
        keys: &TenantKeys,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<Self, CryptoError> {
        Self::wrap(keys, passphrase, params, os_random(), os_random())
    }

    /// Checks stored bytes: length, magic, version, KDF and parameter ranges
    /// (before any argon2 run can be asked for).
    ///
    /// # Errors
    ///
    /// The [`CryptoError`] naming the first check that failed.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let bytes: [u8; WRAPPED_TENANT_KEYS_LEN] = bytes
            .try_into()
            .map_err(|_| CryptoError::WrappedKeysLength { found: bytes.len() })?;
        let wrapped = Self(bytes);
        if bytes[..4] != MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(&bytes[..4]);
            return Err(CryptoError::WrappedKeysMagic { found });
        }
        if bytes[4] != VERSION {
            return Err(CryptoError::WrappedKeysVersion(bytes[4]));
        }
        if bytes[5] != KDF_ARGON2ID {
            return Err(CryptoError::UnknownKdf(bytes[5]));
        }
        wrapped.params().validate()?;
        Ok(wrapped)
    }

    /// The 170 stored bytes.
    pub const fn as_bytes(&self) -> &[u8; WRAPPED_TENANT_KEYS_LEN] {
        &self.0
    }

    /// The 170 stored bytes, owned.
    pub const fn to_bytes(&self) -> [u8; WRAPPED_TENANT_KEYS_LEN] {
        self.0
    }

    /// The argon2id parameters stored in bytes 6..18.
    pub fn params(&self) -> KdfParams {
        let word = |at: usize| {
            u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
        };
        KdfParams {
            m_cost_kib: word(6),
            t_cost: word(10),
            parallelism: word(14),
        }
    }

    /// The recovery public key stored in plaintext in bytes 34..66.
    pub fn public_key(&self) -> RecoveryPublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.0[34..66]);
        RecoveryPublicKey::from_bytes(key)
    }

    /// Decrypts the tenant keys with the recovery passphrase.
    ///
    /// # Errors
    ///
    /// [`CryptoError::WrongPassphrase`] when the tag does not verify;
    /// [`CryptoError::PublicKeyMismatch`] when the secret does not match the
    /// stored public key; [`CryptoError::Kdf`] if argon2 cannot run.
    pub fn unwrap(&self, passphrase: &[u8]) -> Result<TenantKeys, CryptoError> {
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&self.0[18..34]);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&self.0[66..90]);
        let kek = self.params().derive_kek(passphrase, &salt)?;

        let mut plain = Zeroizing::new([0u8; 64]);
        plain.copy_from_slice(&self.0[90..154]);
        let tag = chacha20poly1305::Tag::try_from(&self.0[154..]).expect("the tag is 16 bytes");
        cipher(&kek)
            .decrypt_inout_detached(
                &nonce.into(),
                &self.0[..HEADER_LEN],
                (&mut plain[..]).into(),
                &tag,
            )
            .map_err(|_| CryptoError::WrongPassphrase)?;

        let mut id_key = Zeroizing::new([0u8; 32]);
        id_key.copy_from_slice(&plain[..32]);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&plain[32..]);
        let keys = TenantKeys {
            id_key: IdKey::from_bytes(*id_key),
            recovery_secret: RecoverySecret::from_bytes(*secret),
        };
        let stored = self.public_key();
        if keys.public_key() != stored {
            return Err(CryptoError::PublicKeyMismatch { stored });
        }
        Ok(keys)
    }
}

impl std::fmt::Debug for WrappedTenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedTenantKeys")
            .field("params", &self.params())
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

impl serde::Serialize for WrappedTenantKeys {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for WrappedTenantKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if text.len() != WRAPPED_TENANT_KEYS_LEN * 2 {
            return Err(D::Error::custom(CryptoError::WrappedKeysLength {
                found: text.len() / 2,
            }));
        }
        let bytes = hex::decode(text.as_bytes())
            .map_err(|err| D::Error::custom(format!("wrapped tenant keys are not hex: {err}")))?;
        Self::from_bytes(&bytes).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest accepted parameters, to keep tests fast.
    const FAST: KdfParams = KdfParams {
        m_cost_kib: KdfParams::MIN_M_COST_KIB,
        t_cost: 1,
        parallelism: 1,
    };

    fn keys() -> TenantKeys {
        TenantKeys {
            id_key: IdKey::from_bytes([1; 32]),
            recovery_secret: RecoverySecret::from_bytes([2; 32]),
        }
    }

    #[test]
    fn wrapped_keys_unwrap_with_the_right_passphrase_and_not_with_a_wrong_one() {
        // Arrange
        let wrapped = WrappedTenantKeys::wrap_random(&keys(), b"correct horse", FAST).unwrap();
        let stored = WrappedTenantKeys::from_bytes(wrapped.as_bytes()).unwrap();

        // Act
        let unwrapped = stored.unwrap(b"correct horse").unwrap();
        let wrong = stored.unwrap(b"battery staple").unwrap_err();

        // Assert
        assert_eq!(unwrapped.id_key.as_bytes(), &[1; 32]);
        assert_eq!(*unwrapped.recovery_secret.to_bytes(), [2; 32]);
        assert_eq!(
            wrong.to_string(),
            "wrong recovery passphrase (or damaged key blob)"
        );
        assert_eq!(stored.params(), FAST);
        assert_eq!(stored.public_key(), keys().public_key());
    }

    #[test]
    fn changing_the_stored_public_key_or_params_breaks_the_tag() {
        let wrapped = WrappedTenantKeys::wrap(&keys(), b"pw", FAST, [3; 16], [4; 24]).unwrap();
        for byte in [20, 40, 70] {
            let mut bytes = wrapped.to_bytes();
            bytes[byte] ^= 1;
            let err = WrappedTenantKeys::from_bytes(&bytes)
                .unwrap()
                .unwrap(b"pw")
                .unwrap_err();
            assert!(
                matches!(err, CryptoError::WrongPassphrase),
                "byte {byte}: {err}"
            );
        }
    }

    #[test]
    fn parameters_below_the_minimum_are_refused_before_argon2_runs() {
        let weak = KdfParams {
            m_cost_kib: 1024,
            ..FAST
        };
        let err = WrappedTenantKeys::wrap(&keys(), b"pw", weak, [0; 16], [0; 24]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "argon2id memory cost (KiB) of 1024 is outside the accepted range 65536..=4194304"
        );

        let mut bytes = WrappedTenantKeys::wrap(&keys(), b"pw", FAST, [0; 16], [0; 24])
            .unwrap()
            .to_bytes();
        bytes[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&bytes),
            Err(CryptoError::KdfParamOutOfRange {
                value: u32::MAX,
                ..
            })
        ));
        bytes[6..10].copy_from_slice(&65536u32.to_le_bytes());
        bytes[10..14].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&bytes),
            Err(CryptoError::KdfParamOutOfRange {
                name: "time cost",
                ..
            })
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        let good = WrappedTenantKeys::wrap(&keys(), b"pw", FAST, [0; 16], [0; 24])
            .unwrap()
            .to_bytes();
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&good[..169]),
            Err(CryptoError::WrappedKeysLength { found: 169 })
        ));
        let mut bad = good;
        bad[0] = b'X';
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&bad),
            Err(CryptoError::WrappedKeysMagic { .. })
        ));
        let mut bad = good;
        bad[4] = 2;
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&bad),
            Err(CryptoError::WrappedKeysVersion(2))
        ));
        let mut bad = good;
        bad[5] = 9;
        assert!(matches!(
            WrappedTenantKeys::from_bytes(&bad),
            Err(CryptoError::UnknownKdf(9))
        ));
    }

    #[test]
    fn wrapped_keys_travel_through_serde_as_hex() {
        let wrapped = WrappedTenantKeys::wrap(&keys(), b"pw", FAST, [0; 16], [0; 24]).unwrap();
        let json = serde_json::to_string(&wrapped).unwrap();
        assert_eq!(json.len(), 2 + 340);
        assert_eq!(
            serde_json::from_str::<WrappedTenantKeys>(&json).unwrap(),
            wrapped
        );
        assert!(serde_json::from_str::<WrappedTenantKeys>("\"00\"").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn hostile_bytes_are_refused_or_parsed_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            if let Ok(wrapped) = WrappedTenantKeys::from_bytes(&bytes) {
                proptest::prop_assert!(wrapped.params().validate().is_ok());
            }
        }
    }
}
