//! The `enrollment_tokens` table: one-time secrets that let a new agent
//! join a tenant.
//!
//! Only the hash of a token is stored. Consuming one is a single
//! `UPDATE … WHERE used_at IS NULL AND expires_at > now`, so of two racing
//! enrollments with the same token exactly one wins; the loser (and anyone
//! with an old or unknown token) gets a [`ConsumeError`] that says which.
//! [`enroll`] consumes the token and stores the agent in one transaction, so
//! a refused agent (a taken name) leaves the token unused.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::{AnyConnection, Row};
use stowage_protocol::ids::{AgentId, TenantId};

use super::agents::{self, Agent, NewAgent};
use super::{Database, DbError, from_millis, new_row_id, now_millis, parse_id, query_error};
use crate::auth::token;

/// A token just created; the secret exists only here.
#[derive(Debug)]
pub struct CreatedToken {
    /// Row id, for audit entries (never the secret).
    pub id: String,
    /// The secret to hand to the agent's operator, shown once.
    pub secret: SecretString,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// A token could not be consumed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// No token has this secret.
    #[error("the enrollment token is not valid")]
    Unknown,
    /// The token enrolled an agent before.
    #[error("the enrollment token was already used at {0}")]
    AlreadyUsed(DateTime<Utc>),
    /// The token's time ran out.
    #[error("the enrollment token expired at {0}")]
    Expired(DateTime<Utc>),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Creates a token for `tenant` that works for `ttl`.
///
/// # Errors
///
/// Fails when the insert fails (including an unknown tenant) or `ttl` is
/// beyond any representable time.
pub async fn create(
    db: &Database,
    tenant: TenantId,
    ttl: Duration,
) -> Result<CreatedToken, DbError> {
    let new = token::generate();
    let now = now_millis();
    let expires = i64::try_from(ttl.as_millis())
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .ok_or_else(|| DbError::Corrupt {
            what: "enrollment_tokens.expires_at",
            problem: format!("a lifetime of {} s is too long", ttl.as_secs()),
        })?;
    let id = new_row_id();
    sqlx::query(
        "INSERT INTO enrollment_tokens (id, tenant_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.as_str())
    .bind(tenant.to_hex())
    .bind(new.hash.as_str())
    .bind(now)
    .bind(expires)
    .execute(db.pool())
    .await
    .map_err(query_error("create enrollment token"))?;
    Ok(CreatedToken {
        id,
        secret: new.secret,
        expires_at: from_millis("enrollment_tokens.expires_at", expires)?,
    })
}

/// Marks the token with this secret used by `agent` and returns its tenant.
///
/// # Errors
///
/// [`ConsumeError::Unknown`], [`ConsumeError::AlreadyUsed`] or
/// [`ConsumeError::Expired`] when the token cannot enroll; [`ConsumeError::Db`]
/// when the database fails.
pub async fn consume(
    db: &Database,
    secret: &str,
    agent: AgentId,
) -> Result<TenantId, ConsumeError> {
    let mut conn = db
        .pool()
        .acquire()
        .await
        .map_err(query_error("acquire a connection to consume a token"))?;
    consume_on(&mut conn, secret, agent).await
}

/// Consumes the token with this secret and stores `agent` in its tenant,
/// both or neither.
///
/// # Errors
///
/// As [`consume`]; [`ConsumeError::Db`] with [`DbError::AlreadyExists`] when
/// the tenant has an agent of that name (the token stays unused).
pub async fn enroll(
    db: &Database,
    secret: &str,
    agent: NewAgent<'_>,
) -> Result<Agent, ConsumeError> {
    let mut tx = db
        .pool()
        .begin()
        .await
        .map_err(query_error("begin enrolling an agent"))?;
    let tenant = consume_on(&mut tx, secret, agent.id).await?;
    let stored = agents::insert_on(&mut tx, tenant, agent).await?;
    tx.commit()
        .await
        .map_err(query_error("commit enrolling an agent"))?;
    Ok(stored)
}

async fn consume_on(
    conn: &mut AnyConnection,
    secret: &str,
    agent: AgentId,
) -> Result<TenantId, ConsumeError> {
    let hash = token::hash(secret);
    let now = now_millis();
    let won = sqlx::query(
        "UPDATE enrollment_tokens SET used_at = $2, used_by_agent = $3 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
         RETURNING tenant_id",
    )
    .bind(hash.as_str())
    .bind(now)
    .bind(agent.to_hex())
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_error("consume enrollment token"))?;
    if let Some(row) = won {
        let tenant: String = row
            .try_get("tenant_id")
            .map_err(query_error("decode enrollment token"))?;
        return Ok(parse_id("enrollment_tokens.tenant_id", &tenant)?);
    }
    // Lost: find out why, for a message the operator can act on.
    let row =
        sqlx::query("SELECT used_at, expires_at FROM enrollment_tokens WHERE token_hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_error("read enrollment token"))?
            .ok_or(ConsumeError::Unknown)?;
    let read = query_error("decode enrollment token");
    let used_at: Option<i64> = row.try_get("used_at").map_err(read)?;
    let expires_at: i64 = row.try_get("expires_at").map_err(read)?;
    Err(match used_at {
        Some(used) => ConsumeError::AlreadyUsed(from_millis("enrollment_tokens.used_at", used)?),
        None => ConsumeError::Expired(from_millis("enrollment_tokens.expires_at", expires_at)?),
    })
}
