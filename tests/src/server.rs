//! The real `stowage-server` binary on loopback, on one of the two stacks
//! the issue names: embedded SQLite with the local object store, or a fresh
//! PostgreSQL database with a fresh bucket on the S3 test server.
//!
//! The server is configured only through `STOWAGE_*` variables, as an
//! operator would; it listens on port 0 and the harness reads the chosen
//! address from its log. Tenants and enrollment tokens come from the
//! binary's own admin commands. The harness also opens the same object store
//! the server writes to (through the server crate's store code), so tests can
//! count, read and damage the packs the server holds.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::ExposeSecret;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PackEntry, PackReader};
use stowage_server::configuration::Settings;
use stowage_server::storage::{ObjectKey, ObjectStore};
use tempfile::TempDir;

use crate::binaries;
use crate::runtime::block_on;

/// Which database and object store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite and the local object store in the data directory.
    SqliteLocal,
    /// A fresh PostgreSQL database and a fresh bucket on the S3 test server
    /// (`STOWAGE_TEST_POSTGRES_URL`, `STOWAGE_TEST_S3_*`).
    PostgresS3,
}

/// The owner password given to `tenant create`.
const OWNER_PASSWORD: &str = "correct horse battery staple";

/// A running server; it is killed and its files removed when dropped.
#[derive(Debug)]
pub struct TestServer {
    child: Child,
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    env: Vec<(String, String)>,
    store: Arc<dyn ObjectStore>,
    log: PathBuf,
    data_dir: TempDir,
    /// The `stowage-server` binary it runs (peers run the same).
    binary: PathBuf,
}

impl TestServer {
    /// Starts the server on `backend`, or returns `None` (with a note on
    /// stderr) when the PostgreSQL + S3 services are not configured.
    pub fn start(backend: Backend, test: &str) -> Option<Self> {
        Self::start_with(backend, test, &[], None)
    }

    /// [`TestServer::start`] with extra `STOWAGE_*` settings (they win over
    /// the harness's), and optionally another server binary (a benchmark
    /// comparing builds).
    pub fn start_with(
        backend: Backend,
        test: &str,
        extra_env: &[(&str, &str)],
        binary: Option<&Path>,
    ) -> Option<Self> {
        let data_dir = tempfile::tempdir().expect("a temp dir for the server");
        let mut env = vec![
            ("STOWAGE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "STOWAGE_DATA_DIR".to_owned(),
                data_dir
                    .path()
                    .to_str()
                    .expect("a UTF-8 temp dir")
                    .to_owned(),
            ),
            ("STOWAGE_LOG".to_owned(), "info".to_owned()),
        ];
        if backend == Backend::PostgresS3 {
            env.extend(postgres_s3_env(test)?);
        }
        env.retain(|(key, _)| extra_env.iter().all(|(extra, _)| extra != key));
        env.extend(
            extra_env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        Some(Self::spawn(
            env,
            data_dir,
            binary.unwrap_or_else(|| binaries::server()),
        ))
    }

    /// Another instance of this server: its own data directory (spool,
    /// log), the same database, object store and settings — the scale-out
    /// deployment. Only for [`Backend::PostgresS3`]: on SQLite with the
    /// local store the database and objects live in the data directory.
    #[must_use]
    pub fn start_peer(&self) -> Self {
        assert!(
            self.env
                .iter()
                .any(|(key, _)| key == "STOWAGE_DATABASE_URL"),
            "a peer instance needs a shared database: start the first on Backend::PostgresS3"
        );
        let data_dir = tempfile::tempdir().expect("a temp dir for the peer");
        let mut env = self.env.clone();
        for (key, value) in &mut env {
            if key == "STOWAGE_DATA_DIR" {
                value.clone_from(
                    &data_dir
                        .path()
                        .to_str()
                        .expect("a UTF-8 temp dir")
                        .to_owned(),
                );
            }
        }
        Self::spawn(env, data_dir, &self.binary)
    }

    fn spawn(env: Vec<(String, String)>, data_dir: TempDir, binary: &Path) -> Self {
        let settings = Settings::from_sources(None, &env.iter().cloned().collect())
            .expect("the test settings are valid");
        let store = block_on(stowage_server::storage::open(&settings.object_store))
            .expect("the test object store opens");
        let log = data_dir.path().join("server.log");
        let child = spawn_logged(binary, &[], &env, &log);
        let url = wait_for_address(&log);
        Self {
            child,
            url,
            env,
            store,
            log,
            data_dir,
            binary: binary.to_owned(),
        }
    }

    /// Stops the server with SIGTERM, as systemd would, waits for it to
    /// exit, and starts it again on the same address with the same data
    /// directory and settings: the outage an agent sees during an upgrade.
    /// The earlier log is kept as `server-before-restart.log`.
    pub fn restart(&mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .expect("the server takes SIGTERM");
        let status = self.child.wait().expect("the server exits");
        assert!(
            status.success(),
            "the server did not stop cleanly: {status}"
        );
        std::fs::rename(
            &self.log,
            self.log.with_file_name("server-before-restart.log"),
        )
        .expect("the log is kept");
        let address = self
            .url
            .strip_prefix("http://")
            .expect("a plain-HTTP test server")
            .to_owned();
        let mut env = self.env.clone();
        for (key, value) in &mut env {
            if key == "STOWAGE_LISTEN" {
                value.clone_from(&address);
            }
        }
        self.child = spawn_logged(&self.binary, &[], &env, &self.log);
        let url = wait_for_address(&self.log);
        assert_eq!(url, self.url, "the server came back on another address");
    }

    /// The server process's id (to read its resource use from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's settings, as its environment gives them.
    pub fn settings(&self) -> Settings {
        Settings::from_sources(None, &self.env.iter().cloned().collect())
            .expect("the test settings are valid")
    }

    /// Runs `work` on a fresh pool of the server's database, then closes it.
    fn on_database<T>(&self, work: impl AsyncFnOnce(&sqlx::AnyPool) -> T) -> T {
        let url = self.settings().database.url.expose_secret().to_owned();
        block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url)
                .await
                .expect("the test database opens");
            let answer = work(&pool).await;
            pool.close().await;
            answer
        })
    }

    /// Runs one SQL statement on the server's database, as an operator's
    /// hand (or a feature the CLI lacks) would; returns the rows it changed.
    pub fn execute_sql(&self, statement: &str) -> u64 {
        self.on_database(async |pool| {
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(pool)
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"))
                .rows_affected()
        })
    }

    /// The one integer `query` (e.g. a `COUNT(*)`) answers on the server's database.
    pub fn query_number(&self, query: &str) -> i64 {
        use sqlx::Row as _;
        self.on_database(async |pool| {
            sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
                .fetch_one(pool)
                .await
                .unwrap_or_else(|error| panic!("{query}: {error}"))
                .try_get(0)
                .unwrap_or_else(|error| panic!("{query}: {error}"))
        })
    }

    /// Every pack the server's index names (all tenants).
    pub fn indexed_pack_ids(&self) -> Vec<PackId> {
        use sqlx::Row as _;
        let rows = self.on_database(async |pool| {
            sqlx::query("SELECT id FROM packs")
                .fetch_all(pool)
                .await
                .expect("the packs are listed")
        });
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get(0).expect("a pack id is bytes");
                PackId::from_bytes(bytes.try_into().expect("a pack id is 32 bytes"))
            })
            .collect()
    }

    /// The server's data directory (SQLite database, local objects, log).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `stowage-server ARGS` with the server's settings; returns stdout,
    /// panicking with stderr when the command fails.
    pub fn admin(&self, args: &[&str]) -> String {
        self.admin_with_log(args).0
    }

    /// [`Self::admin`], also answering what the command logged on stderr.
    pub fn admin_with_log(&self, args: &[&str]) -> (String, String) {
        let output = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("STOWAGE_OWNER_PASSWORD", OWNER_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("the server binary runs");
        assert!(
            output.status.success(),
            "stowage-server {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8(output.stdout).expect("admin output is UTF-8"),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Creates tenant `name` (owner `owner@NAME.test`) with the admin command.
    pub fn create_tenant(&self, name: &str) {
        let email = format!("owner@{}.test", name.to_ascii_lowercase());
        self.admin(&["tenant", "create", name, "--owner-email", &email]);
    }

    /// A fresh one-time enrollment token for tenant `name`.
    pub fn token(&self, name: &str) -> String {
        self.admin(&["token", "create", "--tenant", name])
            .trim()
            .to_owned()
    }

    /// Removes blob `id` from the server's index, as a garbage collection
    /// (or an index repair) that dropped it would: the pack object stays,
    /// but the server no longer reports the blob as present.
    pub fn forget_blob(&self, id: &BlobId) {
        let deleted = self.on_database(async |pool| {
            sqlx::query("DELETE FROM blobs WHERE id = $1")
                .bind(id.as_bytes().to_vec())
                .execute(pool)
                .await
                .expect("the blob row is deleted")
                .rows_affected()
        });
        assert_eq!(deleted, 1, "blob {id} was indexed once");
    }

    /// Every pack object the server stores (all tenants), sorted by key.
    pub fn pack_keys(&self) -> Vec<ObjectKey> {
        block_on(self.store.list("tenants/"))
            .expect("the store lists")
            .into_iter()
            .map(|meta| meta.key)
            .filter(|key| key.as_str().contains("/packs/"))
            .collect()
    }

    /// Every pack object with its size in bytes.
    pub fn pack_sizes(&self) -> Vec<(ObjectKey, u64)> {
        block_on(self.store.list("tenants/"))
            .expect("the store lists")
            .into_iter()
            .filter(|meta| meta.key.as_str().contains("/packs/"))
            .map(|meta| (meta.key, meta.size))
            .collect()
    }

    /// The bytes of one stored object.
    pub fn read_object(&self, key: &ObjectKey) -> Bytes {
        block_on(self.store.get(key)).unwrap_or_else(|error| panic!("reading {key}: {error}"))
    }

    /// Replaces one stored object.
    pub fn write_object(&self, key: &ObjectKey, bytes: Vec<u8>) {
        block_on(self.store.put_bytes(key, Bytes::from(bytes)))
            .unwrap_or_else(|error| panic!("writing {key}: {error}"));
    }

    /// Removes one stored object.
    pub fn delete_object(&self, key: &ObjectKey) {
        block_on(self.store.delete(key)).unwrap_or_else(|error| panic!("deleting {key}: {error}"));
    }

    /// The plaintext tables of every stored pack: its id and the ids and
    /// kinds of its blobs.
    pub fn pack_tables(&self) -> Vec<StoredPack> {
        self.pack_keys()
            .into_iter()
            .map(|key| {
                let bytes = self.read_object(&key);
                let reader = PackReader::parse(&bytes)
                    .unwrap_or_else(|error| panic!("stored pack {key} does not parse: {error}"));
                StoredPack {
                    id: pack_id_of(&key),
                    blobs: reader.entries().to_vec(),
                    size: bytes.len() as u64,
                    key,
                }
            })
            .collect()
    }
}

/// One pack in the server's store, as its plaintext table describes it.
#[derive(Debug, Clone)]
pub struct StoredPack {
    /// The object's key.
    pub key: ObjectKey,
    /// The pack id (the key's last segment).
    pub id: PackId,
    /// Its table entries (kind, id, offset, length, refs), in table order.
    pub blobs: Vec<PackEntry>,
    /// Its size in bytes.
    pub size: u64,
}

impl StoredPack {
    /// The table entries of data chunks (not trees).
    pub fn data_blobs(&self) -> impl Iterator<Item = &PackEntry> {
        self.blobs
            .iter()
            .filter(|entry| entry.kind == BlobKind::Data)
    }
}

/// The packs of `after` that are not in `before`.
pub fn new_packs(before: &[StoredPack], after: &[StoredPack]) -> Vec<StoredPack> {
    after
        .iter()
        .filter(|pack| before.iter().all(|old| old.id != pack.id))
        .cloned()
        .collect()
}

/// The pack id a pack key ends with.
pub fn pack_id_of(key: &ObjectKey) -> PackId {
    let hex = key.as_str().rsplit('/').next().unwrap_or_default();
    hex.parse()
        .unwrap_or_else(|error| panic!("pack key {key} does not end in a pack id: {error}"))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary ARGS` with exactly `env`, its stdout and stderr in `log`.
fn spawn_logged(binary: &Path, args: &[&str], env: &[(String, String)], log: &Path) -> Child {
    let out = File::create(log).expect("the log file is created");
    let err = out.try_clone().expect("the log file handle clones");
    Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|error| panic!("{} does not start: {error}", binary.display()))
}

/// Waits for the "listening on http://…" log line and returns the URL.
fn wait_for_address(log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|line| line.contains("listening on http://"))
        {
            let url = line.rsplit("listening on ").next().unwrap_or_default();
            return url
                .split(|c: char| c.is_whitespace() || c == '"')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the server did not log its address within 60 s:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `STOWAGE_*` settings for a fresh PostgreSQL database and a fresh bucket,
/// or `None` when the test services are not configured.
fn postgres_s3_env(test: &str) -> Option<Vec<(String, String)>> {
    let (Ok(admin_url), Ok(endpoint)) = (
        std::env::var("STOWAGE_TEST_POSTGRES_URL"),
        std::env::var("STOWAGE_TEST_S3_ENDPOINT"),
    ) else {
        eprintln!(
            "note: {test}: PostgreSQL + S3 part skipped, STOWAGE_TEST_POSTGRES_URL or \
             STOWAGE_TEST_S3_ENDPOINT is not set"
        );
        return None;
    };
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} must be set with STOWAGE_TEST_S3_ENDPOINT"))
    };
    let suffix = random_suffix();
    let database = format!("e2e_{suffix}");
    block_on(create_database(&admin_url, &database));
    Some(vec![
        (
            "STOWAGE_DATABASE_URL".to_owned(),
            with_database(&admin_url, &database),
        ),
        ("STOWAGE_S3_ENDPOINT".to_owned(), endpoint),
        (
            "STOWAGE_S3_BUCKET".to_owned(),
            format!("stowage-e2e-{suffix}"),
        ),
        (
            "STOWAGE_S3_REGION".to_owned(),
            std::env::var("STOWAGE_TEST_S3_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        ),
        (
            "STOWAGE_S3_ACCESS_KEY".to_owned(),
            var("STOWAGE_TEST_S3_ACCESS_KEY"),
        ),
        (
            "STOWAGE_S3_SECRET_KEY".to_owned(),
            var("STOWAGE_TEST_S3_SECRET_KEY"),
        ),
        ("STOWAGE_S3_PATH_STYLE".to_owned(), "true".to_owned()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ])
}

async fn create_database(admin_url: &str, name: &str) {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("STOWAGE_TEST_POSTGRES_URL accepts connections");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("the test database can be created");
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

/// 16 random lowercase hex digits (valid in database and bucket names).
fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = blake3::hash(format!("{nanos}-{}", std::process::id()).as_bytes());
    bytes.copy_from_slice(&seed.as_bytes()[..8]);
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
