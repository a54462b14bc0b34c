//! Command-line parsing and the exit-code contract: 0 success, 3 when some
//! source files could not be read (the snapshot was still committed, and
//! names them), 1 failure. Each command lives in its own module under
//! [`crate::commands`]; this file only parses and dispatches.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::units::{Rate, Span};

/// Stowage agent: encrypted, deduplicated, incremental backups to a Stowage server.
#[derive(Debug, Parser)]
#[command(name = "stowage", version, about)]
struct Cli {
    /// Print the data-format versions this agent reads and writes.
    #[arg(long)]
    formats: bool,
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where the agent's profile, credential and keys live
    /// [default: /etc/stowage for root, else ~/.config/stowage].
    #[arg(long, global = true, env = "STOWAGE_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Where the local cache lives (it only saves work; deleting it is safe)
    /// [default: /var/cache/stowage for root, else ~/.cache/stowage].
    #[arg(long, global = true, env = "STOWAGE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Join a tenant with a one-time enrollment token.
    Enroll(EnrollArgs),
    /// Back up paths, or a stream (--stdin-name).
    Backup(BackupArgs),
    /// List snapshots (this host's unless --host or --all-hosts).
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot.
    Ls(LsArgs),
    /// Restore a snapshot, or part of one, into a directory.
    Restore(RestoreArgs),
    /// Check that a snapshot (default: every snapshot of this host) is
    /// complete; with --read-data, download and check every byte.
    Verify(VerifyArgs),
    /// Run as a service: take this agent's jobs from the server and run them.
    Daemon(DaemonArgs),
    /// Install or remove the systemd unit that runs `stowage daemon`.
    Service(ServiceArgs),
}

/// `stowage daemon`
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Run backups at normal CPU and I/O priority instead of low.
    #[arg(long)]
    pub normal_priority: bool,
    /// Where restore tests restore to, each in a directory named after its
    /// job and deleted afterwards [default: the system's temporary directory].
    #[arg(long, env = "STOWAGE_SCRATCH_DIR", value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// On SIGTERM or SIGINT, how long a running job may take to finish
    /// before it is abandoned (and reported as interrupted), e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub stop_grace: Span,
}

/// `stowage service`
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ServiceAction,
}

/// `stowage service install|uninstall`
#[derive(Debug, Clone, Subcommand)]
pub enum ServiceAction {
    /// Write the systemd unit, then enable and start it.
    Install(ServiceInstallArgs),
    /// Stop and disable the service and remove its unit.
    Uninstall(ServiceUninstallArgs),
}

/// `stowage service install`
#[derive(Debug, Clone, Args)]
pub struct ServiceInstallArgs {
    /// The binary the service runs [default: this one].
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Write the unit here instead of /etc/systemd/system.
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Only write the unit; print the systemctl commands that enable and start it.
    #[arg(long)]
    pub no_start: bool,
}

/// `stowage service uninstall`
#[derive(Debug, Clone, Args)]
pub struct ServiceUninstallArgs {
    /// The directory the unit was written to [default: /etc/systemd/system].
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Only remove the unit; print the systemctl commands that stop and disable it.
    #[arg(long)]
    pub no_stop: bool,
}

/// `stowage enroll`
#[derive(Debug, Clone, Args)]
pub struct EnrollArgs {
    /// The server's base URL, e.g. https://backup.example.com.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The one-time enrollment token (`stowage-server token create`).
    #[arg(
        long,
        env = "STOWAGE_ENROLL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: String,
    /// This agent's name in the tenant [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Keep only what backing up needs: this agent can never read a backup.
    #[arg(long)]
    pub write_only: bool,
    /// Read the recovery passphrase from this file (first line) instead of a
    /// prompt or STOWAGE_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Trust only the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE", conflicts_with = "pin_fingerprint")]
    pub ca_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint.
    #[arg(long, value_name = "sha256:HEX")]
    pub pin_fingerprint: Option<String>,
    /// Allow plain HTTP to a server that is not on this machine.
    #[arg(long)]
    pub insecure_http: bool,
    /// Replace an existing enrollment in the configuration directory.
    #[arg(long)]
    pub force: bool,
}

/// `stowage backup`
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(value_name = "PATH", required_unless_present = "stdin_name")]
    pub paths: Vec<PathBuf>,
    /// Skip paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read exclude globs from this file, one per line (# comments).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// Do not cross into other file systems.
    #[arg(long)]
    pub one_file_system: bool,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Back up standard input (or --command's output) as a file of this name.
    #[arg(long, value_name = "NAME", conflicts_with = "paths")]
    pub stdin_name: Option<String>,
    /// With --stdin-name: run this command and back up its output; the
    /// backup fails if the command fails.
    #[arg(long, value_name = "'CMD ARGS'", requires = "stdin_name")]
    pub command: Option<String>,
    /// Upload at most this fast, e.g. 20M (bytes per second; K, M, G).
    #[arg(long, value_name = "RATE")]
    pub limit_upload: Option<Rate>,
    /// Run at low CPU and I/O priority (nice 10, idle I/O class), as
    /// scheduled runs do.
    #[arg(long)]
    pub low_priority: bool,
    /// Record this host name instead of the profile's.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Record this as the snapshot's time instead of now (RFC 3339, e.g.
    /// 2027-01-01T02:00:00Z): for importing old backups, and for tests
    /// that simulate months of daily backups.
    #[arg(long, value_name = "TIME")]
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    pub json: bool,
}

/// `stowage snapshots`
#[derive(Debug, Clone, Args)]
pub struct SnapshotsArgs {
    /// Only this host's snapshots.
    #[arg(long, value_name = "HOST", conflicts_with = "all_hosts")]
    pub host: Option<String>,
    /// Every host of the tenant.
    #[arg(long)]
    pub all_hosts: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `stowage ls`
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// A snapshot id, a unique prefix, or `latest`.
    pub snapshot: String,
    /// Only this directory (or file) inside the snapshot.
    pub path: Option<PathBuf>,
    /// The host whose `latest` is meant [default: this one].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// What `restore` does with a file that already exists in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overwrite {
    /// Leave it alone (and report it).
    Never,
    /// Replace it when size, mtime or content differ.
    IfChanged,
    /// Always replace it.
    Always,
}

/// `stowage restore`
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// SNAPSHOT or SNAPSHOT:PATH — an id, a unique prefix, or `latest`.
    pub snapshot: String,
    /// The directory to restore into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    /// Restore only these paths inside the snapshot (repeatable).
    #[arg(long, value_name = "PATH")]
    pub include: Vec<PathBuf>,
    /// What to do with files that already exist.
    #[arg(long, value_enum, default_value_t = Overwrite::IfChanged)]
    pub overwrite: Overwrite,
    /// Download at most this fast, e.g. 50M.
    #[arg(long, value_name = "RATE")]
    pub limit_download: Option<Rate>,
    /// The host whose `latest` is meant [default: this one].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    pub json: bool,
}

/// `stowage verify`
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// A snapshot id, prefix or `latest` [default: every snapshot of this host].
    pub snapshot: Option<String>,
    /// Download, decrypt and check every blob, not only the structure.
    #[arg(long)]
    pub read_data: bool,
    /// Download at most this fast, e.g. 50M.
    #[arg(long, value_name = "RATE")]
    pub limit_download: Option<Rate>,
    /// The host whose snapshots are meant [default: this one].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    pub json: bool,
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked: exit 0.
    Success,
    /// Done, but some source files could not be read: exit 3.
    Partial,
}

/// Exit code for a partial backup.
pub const EXIT_PARTIAL: u8 = 3;
/// Exit code for a failure.
pub const EXIT_FAILURE: u8 = 1;

/// Parses the command line and runs the command; returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.formats {
        println!("{}", stowage_protocol::FORMAT_SUMMARY);
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("stowage: no command given; see `stowage --help`");
        return ExitCode::from(EXIT_FAILURE);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stowage-io")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("stowage: unable to start the I/O runtime - {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let global = cli.global;
    let result = runtime.block_on(async move {
        match command {
            Command::Enroll(args) => commands::enroll::run(&global, args).await,
            Command::Backup(args) => commands::backup::run(&global, args).await,
            Command::Snapshots(args) => commands::snapshots::run(&global, args).await,
            Command::Ls(args) => commands::ls::run(&global, args).await,
            Command::Restore(args) => commands::restore::run(&global, args).await,
            Command::Verify(args) => commands::verify::run(&global, args).await,
            Command::Daemon(args) => commands::daemon::run(&global, args).await,
            Command::Service(args) => commands::service::run(&global, args).await,
        }
    });
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(EXIT_PARTIAL),
        Err(error) => {
            eprintln!("stowage: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
