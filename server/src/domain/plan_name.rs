//! A plan's name, unique within its tenant; people type it on the command
//! line (`plan run --tenant T NAME`), so it has the same rules as a tenant name.

use std::fmt;

use super::typed_name::{self, NameProblem};

/// Longest accepted name, in characters.
pub const MAX_PLAN_NAME_CHARS: usize = 100;

/// A trimmed, non-empty name of at most 100 characters without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanName(String);

/// Why a string is not a valid plan name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanNameError {
    /// Nothing but whitespace.
    #[error("a plan name cannot be empty")]
    Empty,
    /// Too long.
    #[error("a plan name can have at most 100 characters, this one has {0}")]
    TooLong(usize),
    /// Contains a control character such as a newline.
    #[error("a plan name cannot contain control characters such as newlines")]
    ControlCharacter,
}

impl PlanName {
    /// Trims `name` and checks it.
    ///
    /// # Errors
    ///
    /// Returns the rule the name breaks.
    pub fn parse(name: &str) -> Result<Self, PlanNameError> {
        match typed_name::check(name, MAX_PLAN_NAME_CHARS) {
            Ok(name) => Ok(Self(name.to_owned())),
            Err(NameProblem::Empty) => Err(PlanNameError::Empty),
            Err(NameProblem::TooLong(chars)) => Err(PlanNameError::TooLong(chars)),
            Err(NameProblem::ControlCharacter) => Err(PlanNameError::ControlCharacter),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(PlanName::parse(" nightly ").unwrap().as_str(), "nightly");
    }

    #[test]
    fn empty_overlong_and_multiline_names_are_rejected() {
        assert_eq!(PlanName::parse(" "), Err(PlanNameError::Empty));
        assert_eq!(
            PlanName::parse(&"x".repeat(101)),
            Err(PlanNameError::TooLong(101))
        );
        assert!(PlanName::parse(&"x".repeat(100)).is_ok());
        assert_eq!(
            PlanName::parse("a\tb"),
            Err(PlanNameError::ControlCharacter)
        );
    }
}
