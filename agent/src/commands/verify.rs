//! `stowage verify` (being written).

use crate::cli::{Global, Outcome, VerifyArgs};

/// Runs `stowage verify`.
///
/// # Errors
///
/// Always, until the command lands.
#[allow(clippy::unused_async)]
pub async fn run(_global: &Global, _args: VerifyArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("stowage verify is being written")
}
