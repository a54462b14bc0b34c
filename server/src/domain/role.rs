//! What a dashboard user may do inside their tenant.

use std::fmt;
use std::str::FromStr;

/// A user's role, from most to least powerful. Stored as its lowercase name;
/// the database checks the same four names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including billing and deleting the tenant.
    Owner,
    /// Everything except billing and deleting the tenant.
    Admin,
    /// Runs backups and restores, edits plans; cannot manage users.
    Operator,
    /// Reads dashboards only.
    Viewer,
}

/// A string is not one of the four role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role; expected owner, admin, operator or viewer")]
pub struct RoleParseError(pub String);

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Self; 4] = [Self::Owner, Self::Admin, Self::Operator, Self::Viewer];

    /// The stored and displayed name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| RoleParseError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn an_unknown_or_differently_cased_name_is_rejected() {
        assert!("root".parse::<Role>().is_err());
        assert!("Owner".parse::<Role>().is_err());
    }
}
