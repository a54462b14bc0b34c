//! The schema contract, run on SQLite always and on PostgreSQL when configured.

use stowage_protocol::ids::TenantId;
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::audit::{self, NewAuditEntry};
use stowage_server::db::users::{self, NewUser};
use stowage_server::db::{Backend, Database, DbError, tenants};
use stowage_server::domain::{Role, TenantName};

use crate::helpers::{fresh_postgres, spawn_with, test_settings};

fn name(text: &str) -> TenantName {
    TenantName::parse(text).unwrap()
}

fn user(email: &str) -> NewUser<'_> {
    NewUser {
        email,
        password_hash: "$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
        role: Role::Operator,
    }
}

/// Migrates `settings`' database twice and exercises every foundation table.
async fn schema_contract(settings: &DatabaseSettings, backend: Backend) {
    // Migrations apply, and applying them again is a no-op.
    let db = Database::connect(settings).await.unwrap();
    assert_eq!(db.backend(), backend);
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();

    // Tenants: unique names, lookups by id and name.
    let acme = tenants::insert(&db, &name("Acme")).await.unwrap();
    let globex = tenants::insert(&db, &name("Globex")).await.unwrap();
    assert_eq!(tenants::get(&db, acme.id).await.unwrap(), acme);
    assert_eq!(
        tenants::find_by_name(&db, &name("Globex")).await.unwrap(),
        Some(globex.clone())
    );
    assert_eq!(
        tenants::find_by_name(&db, &name("Initech")).await.unwrap(),
        None
    );
    assert!(matches!(
        tenants::insert(&db, &name("Acme")).await,
        Err(DbError::AlreadyExists { what: "tenant", .. })
    ));
    assert!(matches!(
        tenants::get(&db, TenantId::random()).await,
        Err(DbError::NotFound { what: "tenant", .. })
    ));
    assert_eq!(tenants::list(&db).await.unwrap().len(), 2);

    // Users: email unique per tenant, not across tenants; tenant must exist.
    let alice = users::insert(&db, acme.id, user("alice@example.com"))
        .await
        .unwrap();
    assert!(matches!(
        users::insert(&db, acme.id, user("alice@example.com")).await,
        Err(DbError::AlreadyExists { what: "user", .. })
    ));
    users::insert(&db, globex.id, user("alice@example.com"))
        .await
        .unwrap();
    assert!(
        users::insert(&db, TenantId::random(), user("bob@example.com"))
            .await
            .is_err()
    );
    let found = users::find_by_email(&db, acme.id, "alice@example.com")
        .await
        .unwrap();
    assert_eq!(found, Some(alice));
    assert_eq!(
        users::find_by_email(&db, acme.id, "bob@example.com")
            .await
            .unwrap(),
        None
    );

    // Audit log: per tenant, newest first, platform events apart.
    for action in ["first", "second"] {
        let entry = NewAuditEntry {
            actor: "system",
            action,
            object: "o",
            details: "{}",
        };
        audit::record(&db, Some(acme.id), entry).await.unwrap();
        // Distinct millisecond timestamps make the order unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let platform = NewAuditEntry {
        actor: "system",
        action: "boot",
        object: "-",
        details: "",
    };
    audit::record(&db, None, platform).await.unwrap();
    let entries = audit::list_for_tenant(&db, acme.id, 10).await.unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["second", "first"]);
    assert_eq!(entries[0].tenant_id, Some(acme.id));
    assert!(
        audit::list_for_tenant(&db, globex.id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    db.close().await;
}

#[tokio::test]
async fn migrations_apply_on_sqlite_and_the_schema_holds() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DatabaseSettings::sqlite_in(&dir.path().join("fresh"));

    schema_contract(&settings, Backend::Sqlite).await;

    assert!(dir.path().join("fresh/stowage.db").is_file());
}

#[tokio::test]
async fn migrations_apply_on_postgres_and_the_schema_holds() {
    let Some(settings) = fresh_postgres("migrations_apply_on_postgres").await else {
        return;
    };

    schema_contract(&settings, Backend::Postgres).await;
}

#[tokio::test]
async fn the_app_starts_and_is_ready_on_postgres() {
    // Arrange
    let Some(database) = fresh_postgres("the_app_starts_and_is_ready_on_postgres").await else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    settings.database = database;

    // Act
    let app = spawn_with(settings, data_dir).await;
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_on() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DatabaseSettings::sqlite_in(dir.path()))
        .await
        .unwrap();
    db.migrate().await.unwrap();

    // Act: a user of a missing tenant violates the foreign key only if enforced.
    let orphan = users::insert(&db, TenantId::random(), user("x@example.com")).await;

    // Assert
    assert!(orphan.is_err(), "foreign keys are not enforced");
    assert!(
        dir.path().join("stowage.db-wal").exists(),
        "no WAL file next to the database"
    );
}
