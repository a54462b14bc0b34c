//! `stowage-server`: see the library docs; all logic lives there.

use clap::Parser;
use stowage_server::cli::{Cli, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(Cli::parse()).await
}
