//! Tenant key types: the id key, the recovery key pair and their bundles.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{CHUNKER_SEED_CONTEXT, TREE_ID_CONTEXT};
use crate::blob::BlobKind;
use crate::ids::{BlobId, define_id, os_random};

/// The tenant's id key: makes blob ids keyed hashes the server cannot predict.
///
/// Data chunk id = `blake3::keyed_hash(id_key, plaintext)`; tree id =
/// `blake3::keyed_hash(derive_key(TREE_ID_CONTEXT, id_key), plaintext)`, so a
/// file whose bytes equal a serialized tree never shares its id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct IdKey {
    /// The 32 stored bytes.
    key: [u8; 32],
    /// Derived once here because every tree id needs it.
    tree_key: [u8; 32],
}

impl IdKey {
    /// Wraps the 32 stored key bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let tree_key = blake3::derive_key(TREE_ID_CONTEXT, &key);
        Self { key, tree_key }
    }

    /// A fresh key from the OS random source.
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn random() -> Self {
        Self::from_bytes(os_random())
    }

    /// The 32 key bytes, for storing in the agent's key file.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Id of a data chunk with this plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId::from_bytes(*blake3::keyed_hash(&self.key, plaintext).as_bytes())
    }

    /// Id of a tree blob with this plaintext (serialized tree bytes).
    pub fn tree_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId::from_bytes(*blake3::keyed_hash(&self.tree_key, plaintext).as_bytes())
    }

    /// Id of a blob of `kind` with this plaintext.
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> BlobId {
        match kind {
            BlobKind::Data => self.chunk_id(plaintext),
            BlobKind::Tree => self.tree_id(plaintext),
        }
    }

    /// Seed for the chunker's gear table: the first 8 bytes (little-endian) of
    /// `derive_key(CHUNKER_SEED_CONTEXT, id_key)`; never zero, since zero
    /// means "unseeded" to fastcdc.
    pub fn chunker_seed(&self) -> u64 {
        let derived = blake3::derive_key(CHUNKER_SEED_CONTEXT, &self.key);
        let mut seed_bytes = [0u8; 8];
        seed_bytes.copy_from_slice(&derived[..8]);
        u64::from_le_bytes(seed_bytes).max(1)
    }
}

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey(<redacted>)")
    }
}

define_id!(
    /// The tenant's X25519 recovery public key; stored in plaintext on the server.
    RecoveryPublicKey,
    32
);

/// The tenant's X25519 recovery secret: opens every pack's data key.
#[derive(Clone)]
pub struct RecoverySecret(x25519_dalek::StaticSecret);

impl RecoverySecret {
    /// Wraps 32 secret bytes (clamping happens inside X25519).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// A fresh secret from the OS random source.
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn random() -> Self {
        let mut bytes: [u8; 32] = os_random();
        let secret = Self::from_bytes(bytes);
        bytes.zeroize();
        secret
    }

    /// The 32 secret bytes exactly as given to [`RecoverySecret::from_bytes`].
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> RecoveryPublicKey {
        RecoveryPublicKey::from_bytes(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }

    /// The X25519 shared secret with `their_public`.
    pub(crate) fn diffie_hellman(
        &self,
        their_public: &RecoveryPublicKey,
    ) -> x25519_dalek::SharedSecret {
        self.0
            .diffie_hellman(&x25519_dalek::PublicKey::from(*their_public.as_bytes()))
    }
}

impl std::fmt::Debug for RecoverySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoverySecret(<redacted>)")
    }
}

/// Everything a tenant's agent needs to write *and* read backups.
#[derive(Clone, Debug)]
pub struct TenantKeys {
    /// Names blobs (keyed hashes) and seeds the chunker.
    pub id_key: IdKey,
    /// Opens pack data keys; its public half seals them.
    pub recovery_secret: RecoverySecret,
}

impl TenantKeys {
    /// Fresh keys from the OS random source, made once per tenant by the first agent.
    ///
    /// # Panics
    ///
    /// Panics if the OS random source fails.
    pub fn generate() -> Self {
        Self {
            id_key: IdKey::random(),
            recovery_secret: RecoverySecret::random(),
        }
    }

    /// The recovery public key.
    pub fn public_key(&self) -> RecoveryPublicKey {
        self.recovery_secret.public_key()
    }

    /// The keys of a write-only agent: everything needed to back up, nothing to restore.
    pub fn write_keys(&self) -> WriteKeys {
        WriteKeys {
            id_key: self.id_key.clone(),
            public_key: self.public_key(),
        }
    }
}

/// What a write-only agent holds: it can name, dedup and seal, but never open.
#[derive(Clone, Debug)]
pub struct WriteKeys {
    /// Names blobs (keyed hashes) and seeds the chunker.
    pub id_key: IdKey,
    /// Seals each new pack's data key.
    pub public_key: RecoveryPublicKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_key() -> IdKey {
        IdKey::from_bytes(core::array::from_fn(|i| u8::try_from(i).unwrap()))
    }

    #[test]
    fn a_chunk_id_is_the_keyed_blake3_of_the_plaintext() {
        let key = id_key();
        let expected = blake3::keyed_hash(key.as_bytes(), b"hello");
        assert_eq!(key.chunk_id(b"hello").as_bytes(), expected.as_bytes());
    }

    #[test]
    fn a_tree_id_differs_from_the_chunk_id_of_the_same_bytes() {
        let key = id_key();
        assert_ne!(key.tree_id(b"same bytes"), key.chunk_id(b"same bytes"));
        assert_eq!(key.blob_id(BlobKind::Tree, b"x"), key.tree_id(b"x"));
        assert_eq!(key.blob_id(BlobKind::Data, b"x"), key.chunk_id(b"x"));
    }

    #[test]
    fn different_id_keys_give_different_ids_and_seeds() {
        let other = IdKey::from_bytes([9; 32]);
        assert_ne!(id_key().chunk_id(b"a"), other.chunk_id(b"a"));
        assert_ne!(id_key().chunker_seed(), other.chunker_seed());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let keys = TenantKeys::generate();
        let debug = format!("{keys:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(
            !debug.contains(&hex::encode(keys.id_key.as_bytes())),
            "{debug}"
        );
        assert!(
            !debug.contains(&hex::encode(*keys.recovery_secret.to_bytes())),
            "{debug}"
        );
    }

    #[test]
    fn a_secret_round_trips_through_its_bytes_and_keeps_its_public_key() {
        let secret = RecoverySecret::random();
        let again = RecoverySecret::from_bytes(*secret.to_bytes());
        assert_eq!(again.public_key(), secret.public_key());
    }

    #[test]
    fn write_keys_carry_the_id_key_and_the_public_key() {
        let keys = TenantKeys::generate();
        let write = keys.write_keys();
        assert_eq!(write.id_key.as_bytes(), keys.id_key.as_bytes());
        assert_eq!(write.public_key, keys.public_key());
    }
}
