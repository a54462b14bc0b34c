//! The agent's configuration directory: which server, which agent, and the
//! keys — everything `stowage enroll` writes and every other command reads.
//!
//! ```text
//! <config-dir>/agent.toml     server URL, trust, agent and tenant ids (mode 0644)
//! <config-dir>/credential     the agent's bearer credential          (mode 0600)
//! <config-dir>/keys.json      the tenant keys this agent may hold    (mode 0600)
//! <config-dir>/repo.json      the tenant's repository config, as the server stores it
//! ```
//!
//! The directory is `--config-dir`, else `STOWAGE_CONFIG_DIR`, else
//! `/etc/stowage` for root and `$XDG_CONFIG_HOME/stowage` (or
//! `~/.config/stowage`) for anyone else. Secrets are written to a temporary
//! file created 0600, fsynced, then renamed, so a crash never leaves a
//! half-written or briefly world-readable key.
//!
//! The local cache (what makes incremental backups cheap) lives elsewhere,
//! under [`cache_root`], because losing it costs only a re-read.

pub mod files;
mod keys;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stowage_protocol::config::RepoConfig;
use stowage_protocol::ids::{AgentId, TenantId};
use zeroize::Zeroizing;

use crate::transport::{Fingerprint, TransportConfig, Trust, Url};

pub use files::write_private;
pub use keys::{AgentKeys, KeysFileError};

/// File names inside the configuration directory.
pub const PROFILE_FILE: &str = "agent.toml";
/// The credential file.
pub const CREDENTIAL_FILE: &str = "credential";
/// The keys file.
pub const KEYS_FILE: &str = "keys.json";
/// The repository config file.
pub const REPO_FILE: &str = "repo.json";

/// Where this agent's configuration lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir(PathBuf);

impl ConfigDir {
    /// The directory given, else the default for this user (see the module docs).
    ///
    /// # Errors
    ///
    /// Fails when no directory is given and neither `XDG_CONFIG_HOME` nor
    /// `HOME` is set for a non-root user.
    pub fn resolve(explicit: Option<PathBuf>) -> anyhow::Result<Self> {
        if let Some(dir) = explicit {
            return Ok(Self(dir));
        }
        if is_root() {
            return Ok(Self(PathBuf::from("/etc/stowage")));
        }
        if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
            return Ok(Self(PathBuf::from(dir).join("stowage")));
        }
        match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
            Some(home) => Ok(Self(PathBuf::from(home).join(".config/stowage"))),
            None => anyhow::bail!(
                "no configuration directory: pass --config-dir or set STOWAGE_CONFIG_DIR \
                 (neither XDG_CONFIG_HOME nor HOME is set)"
            ),
        }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether an agent was already enrolled here.
    pub fn is_enrolled(&self) -> bool {
        self.0.join(PROFILE_FILE).exists()
    }

    /// Reads the profile.
    ///
    /// # Errors
    ///
    /// Names the file and the problem; a missing file says to enroll first.
    pub fn load_profile(&self) -> anyhow::Result<Profile> {
        let path = self.0.join(PROFILE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "this machine is not enrolled: {} does not exist (run `stowage enroll` \
                     first, or pass the --config-dir it used)",
                    path.display()
                )
            } else {
                anyhow::anyhow!("unable to read {} - {error}", path.display())
            }
        })?;
        toml::from_str(&text).map_err(|error| {
            anyhow::anyhow!("{} is not a valid agent profile - {error}", path.display())
        })
    }

    /// Reads the credential.
    ///
    /// # Errors
    ///
    /// Names the file and the problem.
    pub fn load_credential(&self) -> anyhow::Result<Zeroizing<String>> {
        let path = self.0.join(CREDENTIAL_FILE);
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|error| anyhow::anyhow!("unable to read {} - {error}", path.display()))?,
        );
        Ok(Zeroizing::new(text.trim().to_owned()))
    }

    /// Reads the keys.
    ///
    /// # Errors
    ///
    /// Names the file and the problem.
    pub fn load_keys(&self) -> anyhow::Result<AgentKeys> {
        let path = self.0.join(KEYS_FILE);
        let bytes = Zeroizing::new(
            std::fs::read(&path)
                .map_err(|error| anyhow::anyhow!("unable to read {} - {error}", path.display()))?,
        );
        AgentKeys::from_json(&bytes).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }

    /// Reads the repository config.
    ///
    /// # Errors
    ///
    /// Names the file and the problem.
    pub fn load_repo_config(&self) -> anyhow::Result<RepoConfig> {
        let path = self.0.join(REPO_FILE);
        let bytes = std::fs::read(&path)
            .map_err(|error| anyhow::anyhow!("unable to read {} - {error}", path.display()))?;
        RepoConfig::from_json(&bytes)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
    }
}

/// `agent.toml`: who the server is and who this agent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Base URL of the server.
    pub server: String,
    /// A PEM file of CA certificates to trust instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// The server certificate's pinned fingerprint (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_fingerprint: Option<String>,
    /// Plain HTTP to a host that is not loopback was allowed at enrollment.
    #[serde(default)]
    pub insecure_http: bool,
    /// This agent's id.
    pub agent_id: AgentId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The name it enrolled under.
    pub agent_name: String,
    /// The host name recorded in its snapshots.
    pub hostname: String,
    /// Enrolled with `--write-only`: holds no key that reads backups.
    #[serde(default)]
    pub write_only: bool,
}

impl Profile {
    /// How to reach the server this profile names.
    ///
    /// # Errors
    ///
    /// A malformed URL or fingerprint in the file.
    pub fn transport(&self) -> anyhow::Result<TransportConfig> {
        let server = Url::parse(&self.server).map_err(|error| {
            anyhow::anyhow!(
                "the server URL {:?} in {PROFILE_FILE} is invalid - {error}",
                self.server
            )
        })?;
        let trust =
            match (&self.pin_fingerprint, &self.ca_cert) {
                (Some(pin), _) => Trust::Pinned(pin.parse::<Fingerprint>().map_err(|error| {
                    anyhow::anyhow!("pin_fingerprint in {PROFILE_FILE}: {error}")
                })?),
                (None, Some(ca)) => Trust::CaFile(ca.clone()),
                (None, None) => Trust::SystemRoots,
            };
        Ok(TransportConfig {
            server,
            trust,
            insecure_http: self.insecure_http,
        })
    }
}

/// The root of the local cache: `STOWAGE_CACHE_DIR` (or the `explicit`
/// value of `--cache-dir`), else `/var/cache/stowage` for root and
/// `$XDG_CACHE_HOME/stowage` (or `~/.cache/stowage`) for anyone else. Each
/// agent keeps its files in a subdirectory named by its id, so several
/// agents on one machine never share a cache.
pub fn cache_root(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir;
    }
    if is_root() {
        return PathBuf::from("/var/cache/stowage");
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("stowage");
    }
    std::env::var_os("HOME")
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || std::env::temp_dir().join("stowage-cache"),
            |home| PathBuf::from(home).join(".cache/stowage"),
        )
}

/// Whether this process runs as root (its effective user).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the effective user; no libc call needed.
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_round_trips_through_toml() {
        let profile = Profile {
            server: "https://backup.example.com".into(),
            ca_cert: None,
            pin_fingerprint: Some(format!("sha256:{}", "ab".repeat(32))),
            insecure_http: false,
            agent_id: AgentId::from_bytes([1; 16]),
            tenant_id: TenantId::from_bytes([2; 16]),
            agent_name: "db-1".into(),
            hostname: "db-1.example.com".into(),
            write_only: true,
        };
        let text = toml::to_string(&profile).unwrap();
        assert_eq!(toml::from_str::<Profile>(&text).unwrap(), profile);
        assert!(matches!(
            profile.transport().unwrap().trust,
            Trust::Pinned(_)
        ));
    }

    #[test]
    fn a_missing_profile_says_to_enroll() {
        let dir = tempfile::tempdir().unwrap();
        let error = ConfigDir::resolve(Some(dir.path().to_owned()))
            .unwrap()
            .load_profile()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not enrolled") && error.contains("stowage enroll"),
            "{error}"
        );
    }
}
