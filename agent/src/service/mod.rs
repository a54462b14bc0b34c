//! `stowage service install|uninstall`: the systemd unit that runs
//! `stowage daemon` at boot.
//!
//! Installing writes the unit ([`unit`]) atomically, then — when this is
//! root and `systemctl` is there, unless told not to start — reloads
//! systemd and enables and starts the service; otherwise it says which
//! commands to run. It refuses when the machine is not enrolled (a daemon
//! without a profile would only fail and restart) and, for the system unit
//! directory, when not root. Uninstalling stops and disables the service,
//! removes the unit and reloads systemd.

pub mod systemctl;
pub mod unit;

use std::path::{Path, PathBuf};

use crate::profile::{ConfigDir, files};

/// The unit's file name.
pub const UNIT_NAME: &str = "stowage.service";
/// Where system units written by an administrator live.
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// Where the unit goes and what may be run; the command fills these in
/// from the command line and the machine.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// `--unit-dir`, else [`SYSTEM_UNIT_DIR`].
    pub unit_dir: Option<PathBuf>,
    /// Run `systemctl` (not `--no-start` / `--no-stop`).
    pub use_systemctl: bool,
    /// `systemctl` on this machine, if any.
    pub systemctl: Option<PathBuf>,
    /// Whether this process runs as root.
    pub is_root: bool,
}

impl ServiceOptions {
    fn unit_dir(&self) -> anyhow::Result<&Path> {
        match &self.unit_dir {
            Some(dir) => Ok(dir),
            None if self.is_root => Ok(Path::new(SYSTEM_UNIT_DIR)),
            None => anyhow::bail!(
                "writing the service unit into {SYSTEM_UNIT_DIR} needs root: run this as root \
                 (e.g. with sudo), or pass --unit-dir with a directory you can write"
            ),
        }
    }

    /// `systemctl`, when it is to be run: asked for, present, and root.
    fn systemctl(&self) -> Option<&Path> {
        self.systemctl
            .as_deref()
            .filter(|_| self.use_systemctl && self.is_root)
    }
}

/// What the agent runs as: its binary and directories.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The `stowage` binary the unit starts.
    pub binary: PathBuf,
    /// The configuration directory (must hold an enrollment).
    pub config_dir: ConfigDir,
    /// `--cache-dir`, if one was given.
    pub cache_dir: Option<PathBuf>,
}

/// Installs the unit; returns what to tell the operator.
///
/// # Errors
///
/// Not enrolled, not root for the system directory, a binary that is not
/// an executable file, the unit cannot be written, or `systemctl` fails.
pub fn install(agent: &Agent, options: &ServiceOptions) -> anyhow::Result<Vec<String>> {
    agent
        .config_dir
        .load_profile()
        .map_err(|error| anyhow::anyhow!("the service is not installed: {error:#}"))?;
    let binary = executable(&agent.binary)?;
    let unit_dir = options.unit_dir()?;
    let text = unit::render(
        &binary,
        Some(agent.config_dir.path()),
        agent.cache_dir.as_deref(),
    )?;
    let path = unit_dir.join(UNIT_NAME);
    files::write_atomic(&path, text.as_bytes(), 0o644)?;
    let mut said = vec![format!(
        "wrote {} (running {})",
        path.display(),
        binary.display()
    )];
    let commands = [&["daemon-reload"][..], &["enable", "--now", UNIT_NAME]];
    match options.systemctl() {
        Some(systemctl) => {
            for args in commands {
                systemctl::run(systemctl, args)?;
            }
            said.push(format!(
                "enabled and started {UNIT_NAME}; its log: journalctl -u stowage"
            ));
        }
        None => said.extend(to_run(options, &commands)),
    }
    Ok(said)
}

/// Stops, disables and removes the unit; returns what to tell the operator.
///
/// # Errors
///
/// Not root for the system directory, `systemctl` fails, or the unit
/// cannot be removed.
pub fn uninstall(options: &ServiceOptions) -> anyhow::Result<Vec<String>> {
    let path = options.unit_dir()?.join(UNIT_NAME);
    if !path.exists() {
        return Ok(vec![format!(
            "there is no {} to remove; nothing was changed",
            path.display()
        )]);
    }
    let systemctl = options.systemctl();
    if let Some(systemctl) = systemctl {
        systemctl::run(systemctl, &["disable", "--now", UNIT_NAME])?;
    }
    std::fs::remove_file(&path)
        .map_err(|error| anyhow::anyhow!("unable to remove {} - {error}", path.display()))?;
    let mut said = vec![format!("removed {}", path.display())];
    match systemctl {
        Some(systemctl) => {
            systemctl::run(systemctl, &["daemon-reload"])?;
            said.push(format!("stopped and disabled {UNIT_NAME}"));
        }
        None => said.extend(to_run(
            options,
            &[&["disable", "--now", UNIT_NAME], &["daemon-reload"]],
        )),
    }
    Ok(said)
}

/// The `systemctl` commands left for the operator, and why.
fn to_run(options: &ServiceOptions, commands: &[&[&str]]) -> Vec<String> {
    let why = if !options.use_systemctl {
        "as asked, systemctl was not run"
    } else if options.systemctl.is_none() {
        "systemctl is not on PATH here"
    } else {
        "systemctl needs root"
    };
    let mut lines = vec![format!("{why}; to finish, run as root:")];
    lines.extend(
        commands
            .iter()
            .map(|args| format!("  systemctl {}", args.join(" "))),
    );
    lines
}

/// `binary` as an absolute path to an executable file.
fn executable(binary: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let absolute = binary.canonicalize().map_err(|error| {
        anyhow::anyhow!(
            "the agent binary {} cannot be found - {error}",
            binary.display()
        )
    })?;
    let meta = std::fs::metadata(&absolute)
        .map_err(|error| anyhow::anyhow!("unable to examine {} - {error}", absolute.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        anyhow::bail!(
            "the agent binary {} is not an executable file",
            absolute.display()
        );
    }
    Ok(absolute)
}

#[cfg(test)]
mod tests;
