//! The command line: `stowage-server [--config FILE] [serve]`.
//!
//! `serve` is the default so a bare `stowage-server` runs the platform;
//! administrative subcommands sit beside it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::configuration::Settings;
use crate::startup::Application;
use crate::telemetry;

/// The Stowage server: API, dashboard, storage, scheduling and retention.
///
/// Settings come from built-in defaults, then the TOML file given with
/// --config, then STOWAGE_* environment variables (see the configuration
/// module docs). With no settings at all it runs on SQLite and the local
/// filesystem under ./stowage-data, listening on 127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "stowage-server", version)]
pub struct Cli {
    /// TOML configuration file; STOWAGE_* environment variables override it.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "STOWAGE_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Run the server until SIGTERM or SIGINT (the default).
    Serve,
}

/// Runs the parsed command line.
///
/// # Errors
///
/// Fails when the settings are invalid or the command fails.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init_subscriber(telemetry::get_subscriber(&settings.log, std::io::stdout))?;
    tracing::info!("stowage-server {} starting", env!("CARGO_PKG_VERSION"));
    let application = Application::build(settings).await?;
    application.run_until_stopped().await
}
