//! `stowage-server`: see the library docs; all logic lives there.

use std::process::ExitCode;

use clap::Parser;
use stowage_server::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole cause chain on one line, without a backtrace: this is
            // read by an operator fixing a setting, not by a developer.
            eprintln!("stowage-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}
