//! Presence: what the agent tells the server about itself and its host on
//! its first claim and then every [`FACTS_EVERY`] — its version, the OS,
//! the host name, and the free space of `/` and of every source path of
//! the backups this daemon has run, so the dashboard can warn before a
//! disk fills up. Source paths are remembered only while the daemon runs:
//! after a restart, `/` is reported until the first backup.

use std::collections::BTreeSet;
use std::time::Duration;

use stowage_protocol::api::{AgentFacts, FilesystemSpace};
use tokio::time::Instant;

/// Least time between two reports of the facts.
pub const FACTS_EVERY: Duration = Duration::from_mins(5);

/// What has been reported, and when.
#[derive(Debug, Default)]
pub struct Presence {
    /// Source paths of the backup jobs run so far.
    sources: BTreeSet<String>,
    /// When the facts last reached the server.
    last_sent: Option<Instant>,
}

impl Presence {
    /// The facts to send with a claim at `now`: on the first claim, then
    /// once [`FACTS_EVERY`] has passed since they last reached the server.
    pub fn due(&self, now: Instant) -> Option<AgentFacts> {
        let due = self
            .last_sent
            .is_none_or(|then| now.duration_since(then) >= FACTS_EVERY);
        due.then(|| gather(&self.sources))
    }

    /// The server took the facts at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
    }

    /// Remembers the source paths of a backup job.
    pub fn note_sources(&mut self, paths: &[String]) {
        self.sources.extend(paths.iter().cloned());
    }
}

/// The facts now, with the space of `/` and of each of `sources`.
pub fn gather(sources: &BTreeSet<String>) -> AgentFacts {
    let os_release = std::fs::read_to_string("/etc/os-release").ok();
    let filesystems = std::iter::once("/")
        .chain(sources.iter().map(String::as_str).filter(|p| *p != "/"))
        .filter_map(space)
        .collect();
    AgentFacts {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        os: os_description(os_release.as_deref()),
        hostname: crate::commands::enroll::hostname(),
        filesystems,
    }
}

/// `linux x86_64 (Debian GNU/Linux 12 (bookworm))`, without the part in
/// parentheses when `/etc/os-release` is unreadable or names nothing.
fn os_description(os_release: Option<&str>) -> String {
    let base = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
    match os_release.and_then(pretty_name) {
        Some(name) => format!("{base} ({name})"),
        None => base,
    }
}

/// The `PRETTY_NAME` of an os-release file, unquoted.
fn pretty_name(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("PRETTY_NAME="))?;
    let value = value.trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    let unescaped = unquoted.replace("\\\"", "\"").replace("\\\\", "\\");
    (!unescaped.is_empty()).then_some(unescaped)
}

/// Free (for an unprivileged writer) and total space of the filesystem
/// holding `path`; `None` when it cannot be asked (the path is gone).
fn space(path: &str) -> Option<FilesystemSpace> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(FilesystemSpace {
        path: path.to_owned(),
        free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pretty_name_is_read_unquoted_and_the_os_falls_back_without_it() {
        // Arrange
        let debian = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        let alpine = "ID=alpine\nPRETTY_NAME=Alpine\n";
        // Act / Assert
        assert_eq!(
            pretty_name(debian).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name(alpine).as_deref(), Some("Alpine"));
        assert_eq!(pretty_name("ID=x\n"), None);
        let base = format!("{} {}", std::env::consts::OS, std::env::consts::ARCH);
        assert_eq!(os_description(None), base);
        assert_eq!(os_description(Some(alpine)), format!("{base} (Alpine)"));
    }

    #[test]
    fn facts_cover_the_root_and_each_existing_source_once() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let sources: BTreeSet<String> = [
            "/".to_owned(),
            dir.path().display().to_string(),
            "/no/such/source/path".to_owned(),
        ]
        .into();
        // Act
        let facts = gather(&sources);
        // Assert
        let paths: Vec<&str> = facts.filesystems.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/", dir.path().to_str().unwrap()]);
        assert!(
            facts
                .filesystems
                .iter()
                .all(|f| f.total_bytes >= f.free_bytes && f.total_bytes > 0)
        );
        assert_eq!(facts.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn facts_are_due_first_and_then_five_minutes_after_they_reached_the_server() {
        // Arrange
        let mut presence = Presence::default();
        let start = Instant::now();
        // Act / Assert
        assert!(
            presence.due(start).is_some(),
            "the first claim carries them"
        );
        assert!(
            presence.due(start).is_some(),
            "still due until the server took them"
        );
        presence.sent(start);
        assert!(presence.due(start + Duration::from_secs(299)).is_none());
        assert!(presence.due(start + FACTS_EVERY).is_some());
    }
}
