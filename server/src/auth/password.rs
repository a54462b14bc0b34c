//! User passwords: argon2id in PHC string form.
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory (argon2's
//! defaults, the OWASP minimum for argon2id), so it runs on tokio's blocking
//! pool rather than stalling a request worker. Parameters travel inside the
//! PHC string, so raising them later still verifies old hashes.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Bytes of random salt per hash.
const SALT_BYTES: usize = 16;

/// A password is unacceptable or cannot be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Empty or whitespace only.
    #[error("the password is empty")]
    Empty,
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password has {0} characters; at least 12 are required")]
    TooShort(usize),
    /// The stored hash is not an argon2 PHC string.
    #[error("the stored password hash is malformed - {0}")]
    MalformedHash(String),
    /// Hashing failed (argon2 refused the input or the task was lost).
    #[error("unable to hash the password - {0}")]
    Hash(String),
}

/// Checks the rules a new password must meet.
///
/// # Errors
///
/// [`PasswordError::Empty`] or [`PasswordError::TooShort`].
pub fn check_new(password: &SecretString) -> Result<(), PasswordError> {
    let text = password.expose_secret();
    let chars = text.chars().count();
    if text.trim().is_empty() {
        Err(PasswordError::Empty)
    } else if chars < MIN_PASSWORD_CHARS {
        Err(PasswordError::TooShort(chars))
    } else {
        Ok(())
    }
}

/// Hashes `password` with argon2id and a fresh salt, on the blocking pool.
///
/// # Errors
///
/// [`PasswordError::Hash`] when argon2 fails.
pub async fn hash(password: SecretString) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).expect("the operating system's random source failed");
        Argon2::default()
            .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
            .map(|phc| phc.to_string())
            .map_err(|err| PasswordError::Hash(err.to_string()))
    })
    .await
    .map_err(|err| PasswordError::Hash(err.to_string()))?
}

/// Whether `password` matches the PHC string `stored`, on the blocking pool.
///
/// # Errors
///
/// [`PasswordError::MalformedHash`] when `stored` is not an argon2 PHC string.
pub async fn verify(password: SecretString, stored: String) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let parsed = argon2::PasswordHash::new(&stored)
            .map_err(|err| PasswordError::MalformedHash(err.to_string()))?;
        match Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(err) => Err(PasswordError::MalformedHash(err.to_string())),
        }
    })
    .await
    .map_err(|err| PasswordError::Hash(err.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let stored = hash(secret("correct horse battery")).await.unwrap();

        assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
        assert!(
            verify(secret("correct horse battery"), stored.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify(secret("correct horse battEry"), stored)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let a = hash(secret("correct horse battery")).await.unwrap();
        let b = hash(secret("correct horse battery")).await.unwrap();

        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_mismatch() {
        let result = verify(secret("whatever password"), "plain".to_owned()).await;

        assert!(matches!(result, Err(PasswordError::MalformedHash(_))));
    }

    #[test]
    fn short_and_empty_passwords_are_refused_with_a_reason() {
        assert!(matches!(
            check_new(&secret("   ")),
            Err(PasswordError::Empty)
        ));
        let short = check_new(&secret("eleven char")).unwrap_err();
        assert_eq!(
            short.to_string(),
            "the password has 11 characters; at least 12 are required"
        );
        check_new(&secret("twelve chars")).unwrap();
    }
}
