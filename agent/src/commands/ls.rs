//! `stowage ls` (being written).

use crate::cli::{Global, LsArgs, Outcome};

/// Runs `stowage ls`.
///
/// # Errors
///
/// Always, until the command lands.
#[allow(clippy::unused_async)]
pub async fn run(_global: &Global, _args: LsArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("stowage ls is being written")
}
