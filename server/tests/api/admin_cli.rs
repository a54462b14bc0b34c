//! The administration commands of the real binary: `tenant create` and
//! `token create`, against the embedded SQLite database in a temp dir.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use stowage_protocol::ids::TenantId;
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::audit;
use stowage_server::db::users;
use stowage_server::db::{Database, enrollment_tokens};

const BINARY: &str = env!("CARGO_BIN_EXE_stowage-server");
const PASSWORD: &str = "correct horse battery staple";

/// Runs the binary with `args`, only `STOWAGE_DATA_DIR` (and `envs`) set,
/// writing `stdin` to its standard input.
pub fn run(
    data_dir: &std::path::Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &str,
) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_clear()
        .env("STOWAGE_DATA_DIR", data_dir)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn create_tenant(data_dir: &std::path::Path, name: &str) -> Output {
    run(
        data_dir,
        &[
            "tenant",
            "create",
            name,
            "--owner-email",
            "Owner@Example.com",
        ],
        &[("STOWAGE_OWNER_PASSWORD", PASSWORD)],
        "",
    )
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub async fn database(data_dir: &std::path::Path) -> Database {
    Database::connect(&DatabaseSettings::sqlite_in(data_dir))
        .await
        .unwrap()
}

#[tokio::test]
async fn tenant_create_prints_the_id_and_stores_a_hashed_owner_and_an_audit_entry() {
    let dir = tempfile::tempdir().unwrap();

    let output = create_tenant(dir.path(), "Acme");

    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let id: TenantId = stdout.trim().parse().expect("stdout is a tenant id");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let db = database(dir.path()).await;
    let owner = users::find_by_email(&db, id, "owner@example.com")
        .await
        .unwrap()
        .expect("the owner exists, email lowercased");
    assert!(owner.password_hash.starts_with("$argon2id$"));
    assert!(
        stowage_server::auth::password::verify(PASSWORD.to_owned().into(), owner.password_hash)
            .await
            .unwrap()
    );
    let entries = audit::list_for_tenant(&db, id, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "tenant.create");
    assert!(!entries[0].details.contains(PASSWORD));
}

#[test]
fn a_duplicate_tenant_name_fails_with_a_clear_message_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    assert!(create_tenant(dir.path(), "Acme").status.success());

    let output = create_tenant(dir.path(), "Acme");

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("tenant \"Acme\" already exists"),
        "{stderr}"
    );
}

#[test]
fn the_owner_password_can_be_piped_and_a_short_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["tenant", "create", "Piped", "--owner-email", "a@b.io"];

    let short = run(dir.path(), &args, &[], "too short\n");
    let piped = run(dir.path(), &args, &[], &format!("{PASSWORD}\n"));

    assert_eq!(short.status.code(), Some(1));
    let stderr = text(&short.stderr);
    assert!(
        stderr.contains("the password has 9 characters; at least 12 are required"),
        "{stderr}"
    );
    assert!(piped.status.success(), "{}", text(&piped.stderr));
}

#[test]
fn a_malformed_email_is_refused_before_a_password_is_asked_or_anything_stored() {
    let dir = tempfile::tempdir().unwrap();

    let output = run(
        dir.path(),
        &["tenant", "create", "Acme", "--owner-email", "nobody"],
        &[],
        "",
    );

    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("\"nobody\" is not an email address"),
        "{}",
        text(&output.stderr)
    );
    assert!(!dir.path().join("stowage.db").exists());
}

#[tokio::test]
async fn token_create_prints_only_a_token_that_enrolls_once() {
    let dir = tempfile::tempdir().unwrap();
    let id: TenantId = text(&create_tenant(dir.path(), "Acme").stdout)
        .trim()
        .parse()
        .unwrap();

    let output = run(
        dir.path(),
        &["token", "create", "--tenant", "Acme", "--ttl", "2h"],
        &[],
        "",
    );

    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let token = stdout.trim();
    assert_eq!(token.len(), 64);
    let db = database(dir.path()).await;
    let agent = stowage_protocol::ids::AgentId::random();
    assert_eq!(
        enrollment_tokens::consume(&db, token, agent).await.unwrap(),
        id
    );
    let actions: Vec<String> = audit::list_for_tenant(&db, id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| {
            assert!(!entry.details.contains(token));
            entry.action
        })
        .collect();
    assert!(
        actions.contains(&"enrollment_token.create".to_owned()),
        "{actions:?}"
    );
}

#[test]
fn token_create_for_an_unknown_tenant_names_it() {
    let dir = tempfile::tempdir().unwrap();

    let output = run(
        dir.path(),
        &["token", "create", "--tenant", "Initech"],
        &[],
        "",
    );

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("there is no tenant named \"Initech\""),
        "{stderr}"
    );
}

#[test]
fn a_malformed_ttl_is_refused_with_the_expected_form() {
    let dir = tempfile::tempdir().unwrap();

    let output = run(
        dir.path(),
        &["token", "create", "--tenant", "Acme", "--ttl", "tomorrow"],
        &[],
        "",
    );

    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("\"tomorrow\" is not a lifetime like 90s, 30m, 24h or 7d"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tenant_create_works_while_a_server_uses_the_same_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let path = data_dir.path().to_owned();
    let app = crate::helpers::spawn_with(crate::helpers::test_settings(&path), data_dir).await;

    let output = tokio::task::spawn_blocking(move || create_tenant(&path, "Live"))
        .await
        .unwrap();

    assert!(output.status.success(), "{}", text(&output.stderr));
    let id: TenantId = text(&output.stdout).trim().parse().unwrap();
    let seen = stowage_server::db::tenants::get(&app.database, id)
        .await
        .unwrap();
    assert_eq!(seen.name.as_str(), "Live");
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn both_commands_work_on_postgres() {
    let Some(settings) = crate::helpers::fresh_postgres("both_commands_work_on_postgres").await
    else {
        return;
    };
    let url = secrecy::ExposeSecret::expose_secret(&settings.url).to_owned();
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("STOWAGE_DATABASE_URL", url.as_str()),
        ("STOWAGE_OWNER_PASSWORD", PASSWORD),
    ];

    let tenant = run(
        dir.path(),
        &["tenant", "create", "Acme", "--owner-email", "o@example.com"],
        &envs,
        "",
    );
    let token = run(
        dir.path(),
        &["token", "create", "--tenant", "Acme"],
        &envs,
        "",
    );

    assert!(tenant.status.success(), "{}", text(&tenant.stderr));
    assert!(token.status.success(), "{}", text(&token.stderr));
    let id: TenantId = text(&tenant.stdout).trim().parse().unwrap();
    let db = Database::connect(&settings).await.unwrap();
    let agent = stowage_protocol::ids::AgentId::random();
    let secret = text(&token.stdout);
    assert_eq!(
        enrollment_tokens::consume(&db, secret.trim(), agent)
            .await
            .unwrap(),
        id
    );
    assert!(!dir.path().join("stowage.db").exists());
}
