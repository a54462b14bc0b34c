//! `stowage restore` (being written).

use crate::cli::{Global, Outcome, RestoreArgs};

/// Runs `stowage restore`.
///
/// # Errors
///
/// Always, until the command lands.
#[allow(clippy::unused_async)]
pub async fn run(_global: &Global, _args: RestoreArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("stowage restore is being written")
}
