//! Administration commands: `tenant create` and `token create`.
//!
//! They open the same database as `serve` (same settings), apply pending
//! migrations, do one thing, record it in the audit log and print only the
//! result on stdout — so `id=$(stowage-server tenant create …)` works — and
//! a human note on stderr. They are safe to run while servers are running:
//! every change is one statement or one transaction.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use secrecy::SecretString;
use stowage_protocol::ids::TenantId;

use crate::auth::password;
use crate::configuration::Settings;
use crate::db::audit::{self, NewAuditEntry};
use crate::db::users::{self, NewUser};
use crate::db::{Database, enrollment_tokens, tenants};
use crate::domain::{Role, TenantName};

/// The audit actor of command-line changes.
pub(super) const CLI_ACTOR: &str = "cli";

/// A checked `tenant create` request: the name and the normalised email.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The tenant's name.
    pub name: TenantName,
    /// The owner's email, trimmed and lowercased.
    pub owner_email: String,
}

impl NewTenant {
    /// Checks the name and email, before anyone is asked for a password.
    ///
    /// # Errors
    ///
    /// Names the rule the name or email breaks.
    pub fn parse(name: &str, owner_email: &str) -> anyhow::Result<Self> {
        Ok(Self {
            name: TenantName::parse(name)?,
            owner_email: normalise_email(owner_email)?,
        })
    }
}

/// Creates the tenant with an owner whose password is `owner_password`,
/// and returns the tenant's id.
///
/// # Errors
///
/// Fails when the password breaks a rule, the name is taken, or the
/// database fails.
pub async fn create_tenant(
    settings: &Settings,
    new: &NewTenant,
    owner_password: SecretString,
) -> anyhow::Result<TenantId> {
    let (name, email) = (&new.name, &new.owner_email);
    password::check_new(&owner_password).context("the owner password is not acceptable")?;
    let password_hash = password::hash(owner_password).await?;
    let db = open(settings).await?;
    let tenant = tenants::insert(&db, name).await?;
    users::insert(
        &db,
        tenant.id,
        NewUser {
            email,
            password_hash: &password_hash,
            role: Role::Owner,
        },
    )
    .await
    .with_context(|| {
        format!(
            "tenant {:?} was created but its owner {email} was not",
            name.as_str()
        )
    })?;
    let details = serde_json::json!({ "name": name.as_str(), "owner": email }).to_string();
    audit::record(
        &db,
        Some(tenant.id),
        NewAuditEntry {
            actor: CLI_ACTOR,
            action: "tenant.create",
            object: &tenant.id.to_hex(),
            details: &details,
        },
    )
    .await?;
    db.close().await;
    Ok(tenant.id)
}

/// Creates an enrollment token for tenant `name` that works for `ttl`.
///
/// # Errors
///
/// Fails when no tenant has that name or the database fails.
pub async fn create_token(
    settings: &Settings,
    name: &str,
    ttl: Duration,
) -> anyhow::Result<enrollment_tokens::CreatedToken> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, name).await?;
    let token = enrollment_tokens::create(&db, tenant, ttl).await?;
    let details = serde_json::json!({ "expires_at": token.expires_at.to_rfc3339() }).to_string();
    audit::record(
        &db,
        Some(tenant),
        NewAuditEntry {
            actor: CLI_ACTOR,
            action: "enrollment_token.create",
            object: &token.id,
            details: &details,
        },
    )
    .await?;
    db.close().await;
    Ok(token)
}

/// The id of the tenant named `name`, as `--tenant` gives it.
///
/// # Errors
///
/// Names the tenant when there is none of that name.
pub(super) async fn tenant_id(db: &Database, name: &str) -> anyhow::Result<TenantId> {
    let name = TenantName::parse(name)?;
    let tenant = tenants::find_by_name(db, &name)
        .await?
        .ok_or_else(|| anyhow!("there is no tenant named {:?}", name.as_str()))?;
    Ok(tenant.id)
}

/// Connects and applies pending migrations.
pub(super) async fn open(settings: &Settings) -> anyhow::Result<Database> {
    let db = Database::connect(&settings.database).await?;
    db.migrate().await?;
    Ok(db)
}

/// Trims and lowercases an email and checks its shape (`local@domain.tld`).
fn normalise_email(email: &str) -> anyhow::Result<String> {
    let email = email.trim().to_lowercase();
    let shape_ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    });
    if !shape_ok || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{email:?} is not an email address like owner@example.com");
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        assert_eq!(
            normalise_email("  Alice@Example.COM ").unwrap(),
            "alice@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused_with_an_example() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "a@b",
            "a@.com",
            "a@b.",
            "a b@c.de",
            "a@b@c.de",
        ] {
            let err = normalise_email(bad).unwrap_err().to_string();
            assert!(err.contains("owner@example.com"), "{bad}: {err}");
        }
    }
}
