//! Everything a command needs once the machine is enrolled: the profile,
//! the keys, the repository config and a client carrying the credential.

use std::path::PathBuf;

use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::TenantKeys;

use crate::api::ServerClient;
use crate::cli::Global;
use crate::profile::{self, AgentKeys, ConfigDir, Profile};
use crate::transport;

/// An enrolled agent, ready to talk to its server.
#[derive(Debug, Clone)]
pub struct AgentContext {
    /// The configuration directory.
    pub dir: ConfigDir,
    /// Who the server is and who this agent is.
    pub profile: Profile,
    /// The keys this agent holds.
    pub keys: AgentKeys,
    /// The tenant's repository config (chunker, pack size, compression).
    pub repo: RepoConfig,
    /// The server, with this agent's credential.
    pub client: ServerClient,
    /// This agent's own cache directory (`<cache root>/<agent id>`).
    pub cache_dir: PathBuf,
}

impl AgentContext {
    /// Loads the enrolled agent the global options point at.
    ///
    /// # Errors
    ///
    /// Not enrolled, an unreadable or damaged file (named), or a transport
    /// configuration that cannot be built.
    pub fn load(global: &Global) -> anyhow::Result<Self> {
        let dir = ConfigDir::resolve(global.config_dir.clone())?;
        let profile = dir.load_profile()?;
        let credential = dir.load_credential()?;
        let keys = dir.load_keys()?;
        let repo = dir.load_repo_config()?;
        let http = transport::build_client(&profile.transport()?)?;
        let client =
            ServerClient::new(http, &profile.transport()?.server).with_credential(credential);
        let cache_dir =
            profile::cache_root(global.cache_dir.clone()).join(profile.agent_id.to_hex());
        Ok(Self {
            dir,
            profile,
            keys,
            repo,
            client,
            cache_dir,
        })
    }

    /// The keys that open backups.
    ///
    /// # Errors
    ///
    /// A write-only agent: says so, and what to do instead.
    pub fn reading_keys(&self, what: &str) -> anyhow::Result<&TenantKeys> {
        self.keys.tenant_keys().ok_or_else(|| {
            anyhow::anyhow!(
                "this agent was enrolled with --write-only and holds no key that can {what}; \
                 use an agent enrolled with the recovery passphrase"
            )
        })
    }
}
