//! Where `tenant create` gets the owner's password: `STOWAGE_OWNER_PASSWORD`,
//! else a prompt without echo (asked twice) on a terminal, else one line of
//! standard input — so scripts can pipe it in without putting it in argv,
//! where every user of the machine could read it.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};

/// The environment variable read first.
pub const OWNER_PASSWORD_VAR: &str = "STOWAGE_OWNER_PASSWORD";

/// Reads the owner's password from the first source that has one.
///
/// # Errors
///
/// Fails when standard input cannot be read or the two typed passwords differ.
pub fn read() -> anyhow::Result<SecretString> {
    if let Ok(password) = std::env::var(OWNER_PASSWORD_VAR) {
        return Ok(SecretString::from(password));
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Owner password: ")
            .context("unable to read the owner password from the terminal")?;
        let second = rpassword::prompt_password("Repeat the owner password: ")
            .context("unable to read the owner password from the terminal")?;
        if first != second {
            bail!("the two passwords typed differ");
        }
        return Ok(SecretString::from(first));
    }
    from_line(&mut std::io::stdin().lock())
}

/// One line of `reader`, without its line ending.
fn from_line(reader: &mut impl BufRead) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("unable to read the owner password from standard input")?;
    let password = SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.expose_secret().is_empty() {
        bail!("no owner password given: set {OWNER_PASSWORD_VAR} or write it to standard input");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piped_line_loses_only_its_line_ending() {
        let mut input: &[u8] = b"  spaces kept  \r\nnext line\n";

        let password = from_line(&mut input).unwrap();

        assert_eq!(password.expose_secret(), "  spaces kept  ");
    }

    #[test]
    fn empty_input_names_both_ways_to_give_a_password() {
        let mut input: &[u8] = b"";

        let err = from_line(&mut input).unwrap_err().to_string();

        assert!(err.contains(OWNER_PASSWORD_VAR), "{err}");
    }
}
