//! Command-line parsing. Commands arrive as the agent grows (enroll, backup,
//! restore, verify, daemon); each lives in its own module under `commands/`.

use std::process::ExitCode;

use clap::Parser;

/// Stowage agent: encrypted, deduplicated, incremental backups to a Stowage server.
#[derive(Debug, Parser)]
#[command(name = "stowage", version, about)]
struct Cli {
    /// Print the data-format versions this agent reads and writes.
    #[arg(long)]
    formats: bool,
}

/// Parses the command line and runs the command; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.formats {
        println!("{}", stowage_protocol::FORMAT_SUMMARY);
    }
    ExitCode::SUCCESS
}
