//! `stowage`: the agent's command line. All logic lives in the library.

fn main() -> std::process::ExitCode {
    stowage_agent::cli::run()
}
