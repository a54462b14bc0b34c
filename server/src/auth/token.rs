//! Machine secrets: enrollment tokens and agent credentials.
//!
//! A secret is 32 bytes from the OS random source, shown once as 64 hex
//! characters and stored only as its BLAKE3 hash (derive-key mode with a
//! context of its own, so the stored value is never another BLAKE3 value the
//! system computes). With 256 bits of entropy no guessing is possible, so a
//! slow password hash would add cost and nothing else; the lookup is by hash,
//! and [`verify`] compares in constant time.

use secrecy::{ExposeSecret, SecretString};

/// Domain separation of stored token hashes. Never modify: stored hashes depend on it.
const HASH_CONTEXT: &str = "stowage 2026-11-26 machine token hash v1";
/// Bytes of randomness in a secret.
pub const SECRET_BYTES: usize = 32;

/// A fresh secret and the hash to store for it.
#[derive(Debug)]
pub struct NewSecret {
    /// The secret to show once (64 hex characters).
    pub secret: SecretString,
    /// Its hash, 64 hex characters, the only form kept.
    pub hash: String,
}

/// Draws a fresh secret.
///
/// # Panics
///
/// Panics if the OS random source fails.
pub fn generate() -> NewSecret {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let secret = hex::encode(bytes);
    let hash = hash(&secret);
    NewSecret {
        secret: SecretString::from(secret),
        hash,
    }
}

/// The stored form of `secret`, as 64 hex characters.
pub fn hash(secret: &str) -> String {
    hex::encode(blake3::derive_key(HASH_CONTEXT, secret.trim().as_bytes()))
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn verify(secret: &SecretString, stored: &str) -> bool {
    let Ok(stored) = blake3::Hash::from_hex(stored) else {
        return false;
    };
    let computed = blake3::Hash::from_bytes(blake3::derive_key(
        HASH_CONTEXT,
        secret.expose_secret().trim().as_bytes(),
    ));
    // blake3::Hash's equality is constant-time.
    computed == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_verifies_against_its_hash_and_nothing_else() {
        let new = generate();

        assert_eq!(new.secret.expose_secret().len(), 64);
        assert!(verify(&new.secret, &new.hash));
        assert!(!verify(&generate().secret, &new.hash));
        assert!(!verify(&new.secret, "not hex"));
    }

    #[test]
    fn two_secrets_differ_and_the_hash_is_not_the_secret() {
        let (a, b) = (generate(), generate());

        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert_ne!(a.hash.as_str(), a.secret.expose_secret());
        assert_eq!(hash(a.secret.expose_secret()), a.hash);
    }

    #[test]
    fn surrounding_whitespace_from_a_paste_is_ignored() {
        let new = generate();
        let pasted = SecretString::from(format!(" {}\n", new.secret.expose_secret()));

        assert!(verify(&pasted, &new.hash));
    }
}
