//! The systemd unit, embedded from `packaging/systemd/stowage.service`
//! (the one file, so the repository's copy and the installed one never
//! drift apart), with its `ExecStart=` line filled in for this machine.

use std::path::Path;

/// The unit as shipped, with `/usr/local/bin/stowage` as the binary.
pub const TEMPLATE: &str = include_str!("../../../packaging/systemd/stowage.service");

/// Why a path cannot go into the unit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// systemd reads unit files as UTF-8.
    #[error("the path {0:?} is not UTF-8, which a unit file cannot hold")]
    NotUtf8(String),
    /// A line break would end the `ExecStart=` line.
    #[error("the path {0:?} holds a line break, which a unit file cannot hold")]
    LineBreak(String),
}

/// The unit, running `binary` with the configuration directory `config_dir`
/// (left out when it is `/etc/stowage`, where root's daemon looks by
/// itself) and `cache_dir` when one was chosen.
///
/// # Errors
///
/// A path that is not UTF-8 or holds a line break.
pub fn render(
    binary: &Path,
    config_dir: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<String, UnitError> {
    let mut command = vec![quote(binary)?];
    if let Some(dir) = config_dir.filter(|dir| *dir != Path::new("/etc/stowage")) {
        command.extend(["--config-dir".to_owned(), quote(dir)?]);
    }
    if let Some(dir) = cache_dir {
        command.extend(["--cache-dir".to_owned(), quote(dir)?]);
    }
    command.push("daemon".to_owned());
    let exec_start = format!("ExecStart={}", command.join(" "));
    let mut unit = String::with_capacity(TEMPLATE.len() + 64);
    for line in TEMPLATE.lines() {
        unit.push_str(if line.starts_with("ExecStart=") {
            &exec_start
        } else {
            line
        });
        unit.push('\n');
    }
    Ok(unit)
}

/// One argument of `ExecStart=`: `%` and `$` doubled (systemd expands
/// them), and double quotes around anything but plain path characters.
fn quote(path: &Path) -> Result<String, UnitError> {
    let text = path
        .to_str()
        .ok_or_else(|| UnitError::NotUtf8(path.to_string_lossy().into_owned()))?;
    if text.contains(['\n', '\r']) {
        return Err(UnitError::LineBreak(text.to_owned()));
    }
    let escaped = text.replace('%', "%%").replace('$', "$$");
    let plain = escaped
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,%$".contains(c));
    Ok(if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_start(unit: &str) -> &str {
        let mut lines = unit.lines().filter(|line| line.starts_with("ExecStart="));
        let line = lines.next().expect("an ExecStart line");
        assert!(lines.next().is_none(), "one ExecStart line");
        line
    }

    #[test]
    fn the_shipped_unit_runs_the_daemon_from_usr_local_bin() {
        assert_eq!(
            exec_start(TEMPLATE),
            "ExecStart=/usr/local/bin/stowage daemon"
        );
        for line in [
            "Type=simple",
            "Restart=on-failure",
            "KillSignal=SIGTERM",
            "NoNewPrivileges=yes",
        ] {
            assert!(TEMPLATE.lines().any(|l| l == line), "{line}");
        }
        assert!(
            !TEMPLATE.contains("ProtectSystem="),
            "restores write anywhere"
        );
    }

    #[test]
    fn the_binary_and_a_non_default_config_dir_are_filled_in() {
        // Act
        let default = render(
            Path::new("/opt/stowage/bin/stowage"),
            Some(Path::new("/etc/stowage")),
            None,
        )
        .unwrap();
        let custom = render(
            Path::new("/usr/bin/stowage"),
            Some(Path::new("/srv/agent config")),
            Some(Path::new("/var/cache/50%")),
        )
        .unwrap();
        // Assert
        assert_eq!(
            exec_start(&default),
            "ExecStart=/opt/stowage/bin/stowage daemon"
        );
        assert_eq!(
            exec_start(&custom),
            "ExecStart=/usr/bin/stowage --config-dir \"/srv/agent config\" --cache-dir /var/cache/50%% daemon"
        );
        assert_eq!(default.lines().count(), TEMPLATE.lines().count());
    }

    #[test]
    fn a_path_with_a_line_break_is_refused() {
        let error = render(Path::new("/usr/bin/sto\nwage"), None, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the path \"/usr/bin/sto\\nwage\" holds a line break, which a unit file cannot hold"
        );
    }
}
