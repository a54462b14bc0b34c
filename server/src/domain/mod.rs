//! Validated domain values: parse once at the edge, then trust the type.

mod byte_size;
mod plan_duration;
mod plan_name;
mod plan_spec;
mod retention;
mod retention_decision;
mod role;
mod schedule;
mod tenant_name;
mod typed_name;

pub use byte_size::{ByteSize, ByteSizeError};
pub use plan_duration::{PlanDuration, PlanDurationError, format_seconds, number_and_unit};
pub use plan_name::{PlanName, PlanNameError};
pub use plan_spec::{PlanInput, PlanSpec, PlanSpecError, Sources};
pub use retention::{KeepCounts, RetentionError, RetentionPolicy};
pub use retention_decision::{Candidate, Decision, Period, Reason, decide};
pub use role::{Role, RoleParseError};
pub use schedule::{Gap, Schedule, ScheduleError};
pub use tenant_name::{TenantName, TenantNameError};
