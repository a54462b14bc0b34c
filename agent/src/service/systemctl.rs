//! Running `systemctl`, or saying what to run when it cannot be run here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `systemctl` on `PATH`, if there is one.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemctl"))
        .find(|candidate| candidate.is_file())
}

/// Runs `systemctl ARGS`.
///
/// # Errors
///
/// It cannot be started or fails; the message names the command and
/// carries its standard error.
pub fn run(systemctl: &Path, args: &[&str]) -> anyhow::Result<()> {
    let shown = format!("systemctl {}", args.join(" "));
    let output = Command::new(systemctl)
        .args(args)
        .output()
        .map_err(|error| anyhow::anyhow!("unable to run `{shown}` - {error}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::bail!("`{shown}` failed ({}): {}", output.status, stderr.trim())
}
