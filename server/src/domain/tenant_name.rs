//! A tenant's display name, unique across the platform.

use std::fmt;

use super::typed_name::{self, NameProblem};

/// Longest accepted name, in characters.
pub const MAX_TENANT_NAME_CHARS: usize = 100;

/// A trimmed, non-empty name of at most 100 characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

/// Why a string is not a valid tenant name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantNameError {
    /// Nothing but whitespace.
    #[error("a tenant name cannot be empty")]
    Empty,
    /// Too long.
    #[error("a tenant name can have at most 100 characters, this one has {0}")]
    TooLong(usize),
    /// Contains a control character such as a newline.
    #[error("a tenant name cannot contain control characters such as newlines")]
    ControlCharacter,
}

impl TenantName {
    /// Trims `name` and checks it.
    ///
    /// # Errors
    ///
    /// Returns the rule the name breaks.
    pub fn parse(name: &str) -> Result<Self, TenantNameError> {
        match typed_name::check(name, MAX_TENANT_NAME_CHARS) {
            Ok(name) => Ok(Self(name.to_owned())),
            Err(NameProblem::Empty) => Err(TenantNameError::Empty),
            Err(NameProblem::TooLong(chars)) => Err(TenantNameError::TooLong(chars)),
            Err(NameProblem::ControlCharacter) => Err(TenantNameError::ControlCharacter),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(
            TenantName::parse("  Acme Ltd ").unwrap().as_str(),
            "Acme Ltd"
        );
    }

    #[test]
    fn empty_overlong_and_multiline_names_are_rejected() {
        assert_eq!(TenantName::parse("   "), Err(TenantNameError::Empty));
        assert_eq!(
            TenantName::parse(&"é".repeat(101)),
            Err(TenantNameError::TooLong(101))
        );
        assert!(TenantName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            TenantName::parse("a\nb"),
            Err(TenantNameError::ControlCharacter)
        );
    }
}
