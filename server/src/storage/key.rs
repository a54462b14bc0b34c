//! Object keys: the one place that decides what a key may look like.
//!
//! A key is what both backends accept without surprises: `/`-separated
//! segments of ASCII letters, digits, `-`, `_`, `.` and `=`, none empty and none
//! starting with a dot. So a key can never climb out of the local store's
//! root (`..`), be absolute (`/etc`), collide with the local store's hidden
//! temporary files (`.tmp-…`), or mean different things on a filesystem and
//! in S3 (`a//b`, `a/./b`, backslashes, Unicode normalisation).

use std::fmt;

/// Longest key accepted; S3 allows 1024 bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// A validated object key such as `tenants/0a1b…/packs/ab/abcdef…`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

/// A string is not a valid object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key {key:?}: {reason}")]
pub struct InvalidKey {
    /// The rejected key (truncated to 200 characters).
    pub key: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl ObjectKey {
    /// Checks `key` against the rules in the module docs.
    ///
    /// # Errors
    ///
    /// Returns [`InvalidKey`] naming the key and the broken rule.
    pub fn parse(key: &str) -> Result<Self, InvalidKey> {
        let reject = |reason| InvalidKey {
            key: key.chars().take(200).collect(),
            reason,
        };
        if key.is_empty() {
            return Err(reject("it is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(reject("it is longer than 1024 bytes"));
        }
        if key.starts_with('/') {
            return Err(reject("it is absolute (starts with '/')"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(reject("it has an empty segment ('//' or a trailing '/')"));
            }
            if segment.starts_with('.') {
                return Err(reject("a segment starts with '.' (such as '..')"));
            }
            if !segment.chars().all(is_key_char) {
                return Err(reject(
                    "it contains a character other than ASCII letters, digits, '-', '_', '.', '=' and '/'",
                ));
            }
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl std::str::FromStr for ObjectKey {
    type Err = InvalidKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_nested_keys_are_accepted() {
        for key in ["a", "tenants/0a1b/packs/ab/abcdef.pack", "x=1/y_2/z-3"] {
            assert_eq!(ObjectKey::parse(key).unwrap().as_str(), key);
        }
    }

    #[test]
    fn keys_that_could_escape_the_store_or_be_ambiguous_are_rejected() {
        let bad = [
            "",
            "/etc/passwd",
            "..",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".hidden",
            "a/.tmp-123",
            "a\\b",
            "C:",
            "sp ace",
            "ümlaut",
        ];
        for key in bad {
            assert!(ObjectKey::parse(key).is_err(), "{key:?} was accepted");
        }
    }

    #[test]
    fn a_key_longer_than_1024_bytes_is_rejected() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        let err = ObjectKey::parse(&long).unwrap_err();
        assert_eq!(err.reason, "it is longer than 1024 bytes");
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn the_error_names_the_key_and_the_rule() {
        let err = ObjectKey::parse("a/../b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid object key \"a/../b\": a segment starts with '.' (such as '..')"
        );
    }
}
