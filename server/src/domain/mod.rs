//! Validated domain values: parse once at the edge, then trust the type.

mod role;
mod tenant_name;

pub use role::{Role, RoleParseError};
pub use tenant_name::{TenantName, TenantNameError};
