//! Where the tenant's recovery passphrase comes from: `--passphrase-file`,
//! else `STOWAGE_PASSPHRASE`, else a prompt on the terminal (asked twice
//! when it is being chosen). It is never echoed, logged or written to disk.

use std::io::IsTerminal;
use std::path::Path;

use zeroize::Zeroizing;

/// The environment variable holding the passphrase for unattended set-ups.
pub const PASSPHRASE_ENV: &str = "STOWAGE_PASSPHRASE";

/// Shortest passphrase accepted when a tenant's keys are created.
pub const MIN_NEW_PASSPHRASE_LEN: usize = 12;

/// Reads the passphrase. `choosing` asks twice on a terminal and enforces
/// [`MIN_NEW_PASSPHRASE_LEN`], since the first agent sets it for the tenant.
///
/// # Errors
///
/// An unreadable or empty file (named), no source on a non-terminal, two
/// prompts that differ, or a new passphrase that is too short.
pub fn read(file: Option<&Path>, choosing: bool) -> anyhow::Result<Zeroizing<String>> {
    let passphrase = if let Some(path) = file {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!(
                "unable to read the passphrase file {} - {error}",
                path.display()
            )
        })?);
        let first = text.lines().next().unwrap_or_default();
        if first.is_empty() {
            anyhow::bail!(
                "the passphrase file {} has an empty first line",
                path.display()
            );
        }
        Zeroizing::new(first.to_owned())
    } else if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        Zeroizing::new(
            value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{PASSPHRASE_ENV} is not valid UTF-8"))?,
        )
    } else if std::io::stdin().is_terminal() {
        prompt(choosing)?
    } else {
        anyhow::bail!(
            "the recovery passphrase is needed: pass --passphrase-file FILE or set \
             {PASSPHRASE_ENV} (standard input is not a terminal to ask on)"
        );
    };
    if passphrase.is_empty() {
        anyhow::bail!("the recovery passphrase is empty");
    }
    if choosing && passphrase.chars().count() < MIN_NEW_PASSPHRASE_LEN {
        anyhow::bail!(
            "the new recovery passphrase has {} characters; use at least {MIN_NEW_PASSPHRASE_LEN} \
             (it is the only way to read the tenant's backups)",
            passphrase.chars().count()
        );
    }
    Ok(passphrase)
}

fn prompt(choosing: bool) -> anyhow::Result<Zeroizing<String>> {
    let label = if choosing {
        "Choose the tenant's recovery passphrase: "
    } else {
        "Recovery passphrase: "
    };
    let first = Zeroizing::new(rpassword::prompt_password(label)?);
    if choosing {
        let second = Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
        if *first != *second {
            anyhow::bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(first)
}
