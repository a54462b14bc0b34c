//! `stowage backup` (being written).

use crate::cli::{BackupArgs, Global, Outcome};

/// Runs `stowage backup`.
///
/// # Errors
///
/// Always, until the command lands.
#[allow(clippy::unused_async)]
pub async fn run(_global: &Global, _args: BackupArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("stowage backup is being written")
}
