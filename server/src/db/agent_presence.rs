//! Agent presence: what each agent's daemon last said about itself and its
//! host (version, OS, host name, free space of its sources), next to when
//! it was last seen.
//!
//! Facts arrive with a job claim ([`record_facts`]); the daemon sends them
//! on its first claim and then every few minutes, so this is one small
//! write per agent per few minutes. "Online" is decided when read: an
//! agent is online when it was seen within the configured silence.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use stowage_protocol::api::{AgentFacts, FilesystemSpace};
use stowage_protocol::ids::{AgentId, TenantId};

use super::{Database, DbError, from_millis, now_millis, parse_id, query_error};

/// One agent with its presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The agent.
    pub id: AgentId,
    /// Its name in the tenant.
    pub name: String,
    /// Its host name (as last reported, else as enrolled).
    pub hostname: String,
    /// The agent's version, once its daemon reported it.
    pub version: Option<String>,
    /// Its operating system, once reported.
    pub os: Option<String>,
    /// Free space of its sources' filesystems, as last reported.
    pub filesystems: Vec<FilesystemSpace>,
    /// When it last made an authenticated request.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When its credential was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Whether an agent answers, as of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Seen within the allowed silence.
    Online,
    /// Silent for longer (or never seen).
    Offline,
    /// Its credential was revoked.
    Revoked,
}

impl State {
    /// As displayed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Revoked => "revoked",
        }
    }
}

impl Presence {
    /// Online, offline after `silence` without a request, or revoked.
    pub fn state(&self, now: DateTime<Utc>, silence: Duration) -> State {
        if self.revoked_at.is_some() {
            return State::Revoked;
        }
        let silence = chrono::Duration::from_std(silence).unwrap_or(chrono::Duration::MAX);
        match self.last_seen_at {
            Some(seen) if now.signed_duration_since(seen) <= silence => State::Online,
            _ => State::Offline,
        }
    }
}

/// Stores `facts` as what agent `agent` of `tenant` reports about itself,
/// and marks it seen now.
///
/// # Errors
///
/// Fails when the update fails; an unknown agent changes nothing.
pub async fn record_facts(
    db: &Database,
    tenant: TenantId,
    agent: AgentId,
    facts: &AgentFacts,
) -> Result<(), DbError> {
    let filesystems =
        serde_json::to_string(&facts.filesystems).map_err(|error| DbError::Corrupt {
            what: "agents.filesystems",
            problem: format!("reported filesystems do not serialise: {error}"),
        })?;
    let now = now_millis();
    sqlx::query(
        "UPDATE agents SET agent_version = $3, os = $4, hostname = $5, filesystems = $6, \
         facts_at = $7, last_seen_at = $7 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.to_hex())
    .bind(agent.to_hex())
    .bind(clip(&facts.version))
    .bind(clip(&facts.os))
    .bind(clip(&facts.hostname))
    .bind(filesystems)
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(query_error("record an agent's facts"))?;
    Ok(())
}

/// Every agent of `tenant` with its presence, by name.
///
/// # Errors
///
/// Fails when the query fails or a row does not decode.
pub async fn list(db: &Database, tenant: TenantId) -> Result<Vec<Presence>, DbError> {
    let rows = sqlx::query(
        "SELECT id, name, hostname, agent_version, os, filesystems, last_seen_at, revoked_at \
         FROM agents WHERE tenant_id = $1 ORDER BY name",
    )
    .bind(tenant.to_hex())
    .fetch_all(db.pool())
    .await
    .map_err(query_error("list agents with presence"))?;
    rows.iter()
        .map(|row| {
            let read = query_error("decode an agent's presence");
            let time = |column: &'static str| -> Result<Option<DateTime<Utc>>, DbError> {
                row.try_get::<Option<i64>, _>(column)
                    .map_err(read)?
                    .map(|millis| from_millis(column, millis))
                    .transpose()
            };
            let filesystems: Option<String> = row.try_get("filesystems").map_err(read)?;
            Ok(Presence {
                id: parse_id("agents.id", &row.try_get::<String, _>("id").map_err(read)?)?,
                name: row.try_get("name").map_err(read)?,
                hostname: row.try_get("hostname").map_err(read)?,
                version: row.try_get("agent_version").map_err(read)?,
                os: row.try_get("os").map_err(read)?,
                filesystems: match filesystems {
                    None => Vec::new(),
                    Some(json) => {
                        serde_json::from_str(&json).map_err(|error| DbError::Corrupt {
                            what: "agents.filesystems",
                            problem: error.to_string(),
                        })?
                    }
                },
                last_seen_at: time("last_seen_at")?,
                revoked_at: time("revoked_at")?,
            })
        })
        .collect()
}

/// Longest stored fact; an agent cannot fill the table with one claim.
const MAX_FACT_CHARS: usize = 200;

fn clip(fact: &str) -> String {
    fact.chars().take(MAX_FACT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(ago: Option<i64>, revoked: bool) -> Presence {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        Presence {
            id: AgentId::random(),
            name: "db1".to_owned(),
            hostname: "db1".to_owned(),
            version: None,
            os: None,
            filesystems: Vec::new(),
            last_seen_at: ago.map(|seconds| now - chrono::Duration::seconds(seconds)),
            revoked_at: revoked.then_some(now),
        }
    }

    #[test]
    fn an_agent_is_offline_after_the_silence_and_revoked_above_all() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let silence = Duration::from_mins(3);

        let states = [
            seen(Some(10), false).state(now, silence),
            seen(Some(180), false).state(now, silence),
            seen(Some(181), false).state(now, silence),
            seen(None, false).state(now, silence),
            seen(Some(10), true).state(now, silence),
        ];

        assert_eq!(
            states,
            [
                State::Online,
                State::Online,
                State::Offline,
                State::Offline,
                State::Revoked
            ]
        );
    }

    #[test]
    fn a_fact_is_clipped_to_its_longest_stored_length() {
        assert_eq!(clip(&"é".repeat(500)).chars().count(), MAX_FACT_CHARS);
        assert_eq!(clip("Debian 12"), "Debian 12");
    }
}
