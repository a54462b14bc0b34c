//! The operator API: plans, jobs, agents, retention and storage usage for automation holding an API
//! key (`stowage-server api-key create`), doing what the command line does
//! through the same [`crate::operations`] and answering with the same JSON
//! shapes ([`crate::views`]).
//!
//! Viewer keys may read; operator keys and above may change plans and
//! start jobs. Every change is in the tenant's audit log under the key.

pub mod agents;
pub mod jobs;
pub mod plans;
pub mod retention;
pub mod usage;

use stowage_protocol::api::codes;

use super::Failure;
use crate::operations::OpError;

impl From<OpError> for Failure {
    fn from(error: OpError) -> Self {
        match error {
            OpError::Invalid(message) => Self::Validation(message),
            OpError::NotFound(message) => Self::NotFound {
                code: codes::NOT_FOUND,
                message,
            },
            OpError::Conflict(message) => Self::Conflict {
                code: codes::CONFLICT,
                message,
            },
            OpError::Db(db) => Self::Unexpected(db.into()),
        }
    }
}
