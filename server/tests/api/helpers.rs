//! Shared test scaffolding: spawn the app on port 0 with a fresh data
//! directory (and, when configured, a fresh PostgreSQL database or S3 bucket).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use secrecy::SecretString;
use sqlx::AssertSqlSafe;
use stowage_server::configuration::{DatabaseSettings, S3Settings, Settings};
use stowage_server::db::Database;
use stowage_server::startup::Application;
use stowage_server::storage::{MemoryStore, ObjectStore};
use stowage_server::telemetry::{get_subscriber, init_subscriber};
use tempfile::TempDir;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        init_subscriber(get_subscriber("debug", std::io::stdout)).unwrap();
    } else {
        init_subscriber(get_subscriber("info", std::io::sink)).unwrap();
    }
});

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: Database,
    /// Removed when the test ends.
    pub data_dir: TempDir,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("the request reaches the server")
    }
}

/// A map of `STOWAGE_*` settings, as the environment would give them.
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Settings for a test: port 0 and everything under `data_dir`.
pub fn test_settings(data_dir: &Path) -> Settings {
    let data_dir = data_dir.to_str().unwrap();
    Settings::from_sources(
        None,
        &env(&[
            ("STOWAGE_LISTEN", "127.0.0.1:0"),
            ("STOWAGE_DATA_DIR", data_dir),
        ]),
    )
    .unwrap()
}

/// The embedded stack: SQLite and the local object store in a temp dir.
pub async fn spawn_app() -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(data_dir.path());
    spawn_with(settings, data_dir).await
}

/// Spawns the app from complete settings.
pub async fn spawn_with(settings: Settings, data_dir: TempDir) -> TestApp {
    LazyLock::force(&TRACING);
    let app = Application::build(settings).await.expect("the app builds");
    start(app, data_dir)
}

/// Spawns the app on an already opened database and store.
pub async fn spawn_on(database: Database, store: Arc<dyn ObjectStore>) -> TestApp {
    LazyLock::force(&TRACING);
    let listen = "127.0.0.1:0".parse().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let app = Application::build_with(listen, database, store, data_dir.path())
        .await
        .expect("the app builds");
    start(app, data_dir)
}

fn start(app: Application, data_dir: TempDir) -> TestApp {
    let address = format!("http://127.0.0.1:{}", app.port());
    let database = app.database().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        database,
        data_dir,
    }
}

/// A fresh, empty PostgreSQL database, or `None` (with a note) when
/// The app on a fresh PostgreSQL database with an in-memory object store, or
/// `None` (with a note) when `STOWAGE_TEST_POSTGRES_URL` is not set.
pub async fn spawn_app_on_postgres(test: &str) -> Option<TestApp> {
    let settings = fresh_postgres(test).await?;
    let database = Database::connect(&settings).await.unwrap();
    database.migrate().await.unwrap();
    Some(spawn_on(database, Arc::new(MemoryStore::new())).await)
}

/// `STOWAGE_TEST_POSTGRES_URL` is not set.
pub async fn fresh_postgres(test: &str) -> Option<DatabaseSettings> {
    let Ok(admin_url) = std::env::var("STOWAGE_TEST_POSTGRES_URL") else {
        eprintln!("note: {test}: PostgreSQL part skipped, STOWAGE_TEST_POSTGRES_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("test_{}", random_hex());
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .expect("STOWAGE_TEST_POSTGRES_URL accepts connections");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("the test database can be created");
    Some(DatabaseSettings {
        url: SecretString::from(with_database(&admin_url, &name)),
    })
}

/// Replaces the database name in a `postgres://…/name?params` URL.
fn with_database(url: &str, name: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query = url[path_start..]
        .find('?')
        .map_or("", |i| &url[path_start + i..]);
    format!("{}/{name}{query}", &url[..path_start])
}

/// S3 settings for a test, or `None` (with a note) when
/// `STOWAGE_TEST_S3_ENDPOINT` is not set. Without `STOWAGE_TEST_S3_BUCKET`
/// each call names a fresh bucket, which the store creates on open.
pub fn s3_settings(test: &str) -> Option<S3Settings> {
    let Ok(endpoint) = std::env::var("STOWAGE_TEST_S3_ENDPOINT") else {
        eprintln!("note: {test}: S3 part skipped, STOWAGE_TEST_S3_ENDPOINT is not set");
        return None;
    };
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} must be set with STOWAGE_TEST_S3_ENDPOINT"))
    };
    Some(S3Settings {
        endpoint,
        bucket: std::env::var("STOWAGE_TEST_S3_BUCKET")
            .unwrap_or_else(|_| format!("stowage-test-{}", &random_hex()[..16])),
        region: std::env::var("STOWAGE_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        access_key: var("STOWAGE_TEST_S3_ACCESS_KEY"),
        secret_key: SecretString::from(var("STOWAGE_TEST_S3_SECRET_KEY")),
        path_style: true,
    })
}

pub fn random_hex() -> String {
    stowage_server::db::new_row_id()
}

#[test]
fn the_database_name_of_a_postgres_url_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5/postgres?sslmode=disable", "t1"),
        "postgres://u@h:5/t1?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://u@h:5", "t1"),
        "postgres://u@h:5/t1"
    );
}
