//! The `users` table: dashboard users, each inside one tenant.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use stowage_protocol::ids::{TenantId, UserId};

use super::{Database, DbError, from_millis, insert_error, now_millis, parse_id, query_error};
use crate::domain::Role;

/// A stored user.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Random id.
    pub id: UserId,
    /// The tenant the user belongs to.
    pub tenant_id: TenantId,
    /// Login name, unique within the tenant; callers normalise it.
    pub email: String,
    /// argon2id PHC string; never logged (see the `Debug` impl).
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("password_hash", &"[REDACTED]")
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// What it takes to create a user.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Login name, already normalised by the caller.
    pub email: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// The user's role.
    pub role: Role,
}

/// Creates a user in `tenant`.
///
/// # Errors
///
/// [`DbError::AlreadyExists`] when the email is taken in this tenant;
/// [`DbError::Query`] otherwise (including an unknown tenant).
pub async fn insert(db: &Database, tenant: TenantId, new: NewUser<'_>) -> Result<User, DbError> {
    let user = User {
        id: UserId::random(),
        tenant_id: tenant,
        email: new.email.to_owned(),
        password_hash: new.password_hash.to_owned(),
        role: new.role,
        created_at: from_millis("users.created_at", now_millis())?,
    };
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user.id.to_hex())
    .bind(tenant.to_hex())
    .bind(user.email.as_str())
    .bind(user.password_hash.as_str())
    .bind(user.role.as_str())
    .bind(user.created_at.timestamp_millis())
    .execute(db.pool())
    .await
    .map_err(insert_error("insert user", "user", new.email))?;
    Ok(user)
}

/// The user of `tenant` with this email, if any.
///
/// # Errors
///
/// Fails when the query fails.
pub async fn find_by_email(
    db: &Database,
    tenant: TenantId,
    email: &str,
) -> Result<Option<User>, DbError> {
    sqlx::query(
        "SELECT id, tenant_id, email, password_hash, role, created_at \
         FROM users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant.to_hex())
    .bind(email)
    .fetch_optional(db.pool())
    .await
    .map_err(query_error("find user by email"))?
    .map(|row| decode(&row))
    .transpose()
}

fn decode(row: &AnyRow) -> Result<User, DbError> {
    let read = query_error("decode user row");
    let text = |column: &str| row.try_get::<String, _>(column).map_err(read);
    let role = text("role")?;
    Ok(User {
        id: parse_id("users.id", &text("id")?)?,
        tenant_id: parse_id("users.tenant_id", &text("tenant_id")?)?,
        email: text("email")?,
        password_hash: text("password_hash")?,
        role: role
            .parse()
            .map_err(|err: crate::domain::RoleParseError| DbError::Corrupt {
                what: "users.role",
                problem: err.to_string(),
            })?,
        created_at: from_millis("users.created_at", row.try_get("created_at").map_err(read)?)?,
    })
}
