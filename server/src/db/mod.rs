//! The database: the only module that writes SQL.
//!
//! One query layer serves both backends. Queries go through sqlx's `Any`
//! driver with portable SQL and `$1` placeholders, so every query is one code
//! path that the test suite runs twice — on SQLite and on PostgreSQL — rather
//! than two implementations that drift apart. Compile-time checked macros are
//! left out on purpose: they would build the drivers a second time for the
//! proc macro and need a live database at build time.
//!
//! The `Any` driver moves only booleans, integers, floats, text and blobs, so
//! the schema sticks to those: random ids are 32-character lowercase hex
//! `TEXT`, content-addressed 32-byte ids (blobs, packs, snapshots) are raw
//! bytes (`BLOB`/`BYTEA`, half the index size of hex at millions of rows), and
//! times are `BIGINT` milliseconds since the Unix epoch (UTC), converted at
//! this boundary ([`now_millis`], [`from_millis`]).
//!
//! Migrations (one folder per backend under `migrations/`) are compiled into
//! the binary ([`migrations`]) and applied at start; on PostgreSQL sqlx takes
//! an advisory lock, so several instances may start at once.
//!
//! Every function that touches tenant data takes the tenant as a parameter.

pub mod agent_presence;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod complete_trees;
pub mod ended_sessions;
pub mod enrollment_tokens;
pub mod gc;
pub mod gc_leases;
pub mod gc_objects;
pub mod gc_repack;
pub mod gc_runs;
pub mod gc_sweep;
pub mod gc_tombstones;
pub mod job_claims;
pub mod jobs;
pub mod migrations;
pub mod packs;
pub mod plans;
pub mod queued_jobs;
pub mod restore_tests;
pub mod snapshot_pins;
pub mod snapshots;
pub mod tenant_keys;
pub mod tenants;
pub mod upload_sessions;
pub mod usage;
pub mod users;

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, ConnectOptions, Row};
use stowage_protocol::ids::{BlobId, TenantId};

use crate::configuration::DatabaseSettings;

/// How long a request waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits for a competing writer before giving up (5 s).
const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 5000";

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default, one file in the data directory.
    Sqlite,
    /// The scale-out database.
    Postgres,
}

/// A pool of connections to the server's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be opened or reached.
    #[error("unable to connect to the database {url} - {source}")]
    Connect {
        /// The URL with any password redacted.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The directory of the SQLite file cannot be created.
    #[error("unable to create the database directory {path:?} - {source}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The filesystem error.
        source: std::io::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("unable to apply database migrations - {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The row asked for does not exist (or belongs to another tenant).
    #[error("{what} {key} does not exist")]
    NotFound {
        /// Kind of row, e.g. "tenant".
        what: &'static str,
        /// How it was looked up.
        key: String,
    },
    /// A unique value is already taken.
    #[error("{what} {value:?} already exists")]
    AlreadyExists {
        /// Kind of row, e.g. "tenant".
        what: &'static str,
        /// The clashing value.
        value: String,
    },
    /// A stored value does not decode (a bug or a hand-edited database).
    #[error("stored {what} is invalid - {problem}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// Any other failed statement.
    #[error("unable to {action} - {source}")]
    Query {
        /// What was being done, e.g. "insert tenant".
        action: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
}

impl Database {
    /// Connects to the database the settings name. For SQLite, creates the
    /// file and its directory if missing and turns on WAL journaling, foreign
    /// keys and a busy timeout on every connection.
    ///
    /// # Errors
    ///
    /// Fails when the URL is malformed or the database cannot be reached.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let connect_error = |source| DbError::Connect {
            url: settings.redacted_url(),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_error)?;
        let options = options.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                            SQLITE_BUSY_TIMEOUT,
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Self { pool, backend })
    }

    /// Applies the embedded migrations that have not run yet.
    ///
    /// # Errors
    ///
    /// Fails when a migration fails or an applied one was changed.
    pub async fn migrate(&self) -> Result<(), DbError> {
        migrations::migrator(self.backend).run(&self.pool).await?;
        Ok(())
    }

    /// Runs a trivial query, for `/readyz`.
    ///
    /// # Errors
    ///
    /// Fails when no connection can be had or the query fails.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(query_error("reach the database"))?;
        Ok(())
    }

    /// Closes every connection; later queries fail. Waits for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction, for writes that must land together or not at
    /// all (the `*_in` functions of the table modules take it as `&mut tx`). Dropping it uncommitted rolls it back, as does the
    /// death of the process.
    ///
    /// # Errors
    ///
    /// Fails when no connection can be had or `BEGIN` fails.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, DbError> {
        self.pool
            .begin()
            .await
            .map_err(query_error("begin a transaction"))
    }

    /// One connection of the pool, for a series of reads that the `*_in`
    /// functions run either on it or inside a transaction.
    ///
    /// # Errors
    ///
    /// Fails when no connection can be had.
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, DbError> {
        self.pool
            .acquire()
            .await
            .map_err(query_error("take a database connection"))
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the query functions in this module.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Adds `mode=rwc` (create if missing) to a SQLite URL and creates the
/// file's directory, so the first start of a fresh installation just works.
fn prepare_sqlite(url: &str) -> Result<String, DbError> {
    let without_scheme = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = without_scheme.split('?').next().unwrap_or_default();
    let in_memory = path.is_empty() || path == ":memory:";
    if !in_memory
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    if in_memory || url.contains("mode=") {
        Ok(url.to_owned())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// A fresh 32-character hex id for rows without a protocol id type.
pub fn new_row_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// Now, as stored: milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// A duration as stored milliseconds; absurdly long ones are capped far
/// below `i64::MAX` so that adding one to a time cannot overflow.
pub fn duration_millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A count or size as stored; values beyond `i64::MAX` do not occur.
pub fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored time back as a `DateTime`.
///
/// # Errors
///
/// Fails for values outside chrono's range (a corrupt row).
pub fn from_millis(what: &'static str, millis: i64) -> Result<DateTime<Utc>, DbError> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| DbError::Corrupt {
        what,
        problem: format!("{millis} is not a time in milliseconds since 1970"),
    })
}

/// Maps a failed statement to [`DbError::Query`].
fn query_error(action: &'static str) -> impl Fn(sqlx::Error) -> DbError + Copy {
    move |source| DbError::Query { action, source }
}

/// Maps a unique-constraint violation to [`DbError::AlreadyExists`], other
/// failures to [`DbError::Query`].
fn insert_error(
    action: &'static str,
    what: &'static str,
    value: &str,
) -> impl FnOnce(sqlx::Error) -> DbError {
    move |source| {
        if source
            .as_database_error()
            .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
        {
            DbError::AlreadyExists {
                what,
                value: value.to_owned(),
            }
        } else {
            DbError::Query { action, source }
        }
    }
}

/// Parses a stored id column.
fn parse_id<T: std::str::FromStr>(what: &'static str, text: &str) -> Result<T, DbError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|err: T::Err| DbError::Corrupt {
        what,
        problem: err.to_string(),
    })
}

/// Decodes a stored 32-byte id column (blob, pack or snapshot id).
fn id_from_bytes<T>(
    what: &'static str,
    bytes: &[u8],
    wrap: impl FnOnce([u8; 32]) -> T,
) -> Result<T, DbError> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| DbError::Corrupt {
        what,
        problem: format!("expected 32 bytes, found {}", bytes.len()),
    })?;
    Ok(wrap(array))
}

/// `$first, $first+1, …` — `count` placeholders for an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most ids bound into one `IN (…)` list or multi-row `VALUES`, well under
/// SQLite's and PostgreSQL's parameter limits.
const MAX_BOUND_IDS: usize = 500;

/// A query over one batch of ids of one tenant: `sql_for` gets the
/// placeholder list (`$2, $3, …`) and returns the statement, in which `$1` is
/// the tenant. Callers split their ids into batches of at most
/// [`MAX_BOUND_IDS`].
fn tenant_ids_query<'a>(
    tenant: TenantId,
    batch: &[BlobId],
    sql_for: impl FnOnce(&str) -> String,
) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
    let sql = sql_for(&placeholders(2, batch.len()));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_hex());
    for id in batch {
        query = query.bind(id.as_bytes().to_vec());
    }
    query
}

/// The 32-byte ids in `column` of every row `sql_for` selects for each batch
/// of `ids` (see [`tenant_ids_query`]), in no particular order.
async fn select_ids_for(
    conn: &mut AnyConnection,
    tenant: TenantId,
    ids: &[BlobId],
    column: &'static str,
    action: &'static str,
    sql_for: impl Fn(&str) -> String,
) -> Result<Vec<BlobId>, DbError> {
    let mut found = Vec::new();
    for batch in ids.chunks(MAX_BOUND_IDS) {
        let rows = tenant_ids_query(tenant, batch, &sql_for)
            .fetch_all(&mut *conn)
            .await
            .map_err(query_error(action))?;
        for row in &rows {
            let bytes: Vec<u8> = row
                .try_get(column)
                .map_err(query_error("decode an id column"))?;
            found.push(id_from_bytes(column, &bytes, BlobId::from_bytes)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }

    #[test]
    fn a_stored_id_of_the_wrong_length_is_corrupt() {
        assert!(id_from_bytes("x", &[0u8; 31], |b| b).is_err());
        assert_eq!(id_from_bytes("x", &[7u8; 32], |b| b).unwrap(), [7u8; 32]);
    }

    #[test]
    fn a_sqlite_url_gains_create_mode_and_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/deeper/stowage.db");
        let url = format!("sqlite://{}", file.display());

        let prepared = prepare_sqlite(&url).unwrap();

        assert_eq!(prepared, format!("{url}?mode=rwc"));
        assert!(dir.path().join("nested/deeper").is_dir());
    }

    #[test]
    fn an_explicit_sqlite_mode_is_kept() {
        assert_eq!(
            prepare_sqlite("sqlite::memory:").unwrap(),
            "sqlite::memory:"
        );
        assert_eq!(
            prepare_sqlite("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
    }

    #[test]
    fn stored_times_round_trip_through_milliseconds() {
        let millis = now_millis();
        assert_eq!(from_millis("t", millis).unwrap().timestamp_millis(), millis);
        assert!(from_millis("t", i64::MAX).is_err());
    }
}
