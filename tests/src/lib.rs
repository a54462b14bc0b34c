//! End-to-end test support: the real `stowage` agent binary against the real
//! `stowage-server` binary, on SQLite with the local store and on PostgreSQL
//! with the S3 test server.
//!
//! - [`binaries`]: finds (and when stale, builds) both binaries.
//! - [`server`]: starts the server on loopback on either [`server::Backend`],
//!   creates tenants and enrollment tokens with its admin commands, and
//!   reads or damages the packs in its object store.
//! - [`agent`]: enrolls agents in temp configuration directories and runs
//!   their commands, capturing exit codes, output and `--json` summaries.
//! - [`fixture`]: source trees with every file kind and metadata a restore
//!   must bring back; [`compare`]: checks a restored tree against its source.
//! - [`craft`]: hand-made (hostile) snapshots committed with an agent's keys.
//! - [`fleet`]: simulated agents (HTTP clients with real credentials) that
//!   long-poll for jobs and finish them at once, counting their claims.
//! - [`runtime`]: the one async runtime the harness blocks on.

pub mod agent;
pub mod binaries;
pub mod compare;
pub mod craft;
pub mod fixture;
pub mod fleet;
pub mod runtime;
pub mod server;

/// Declares, for each scenario `fn NAME(backend: Backend)` in the calling
/// file, a module `NAME` with two tests: `on_sqlite_and_local_store` and
/// `on_postgres_and_s3` (which notes and passes when the PostgreSQL and S3
/// test services are not configured).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn on_sqlite_and_local_store() {
                    super::$name($crate::server::Backend::SqliteLocal);
                }

                #[test]
                fn on_postgres_and_s3() {
                    super::$name($crate::server::Backend::PostgresS3);
                }
            }
        )*
    };
}

/// Where a restore of `source` (an absolute path given to `backup`) put it
/// under `target`: the path nested in full, or by its last component.
pub fn restored_root(target: &std::path::Path, source: &std::path::Path) -> std::path::PathBuf {
    let nested = target.join(source.strip_prefix("/").unwrap_or(source));
    if nested.symlink_metadata().is_ok() {
        return nested;
    }
    let by_name = target.join(source.file_name().expect("a source path has a name"));
    assert!(
        by_name.symlink_metadata().is_ok(),
        "the restore put {} neither at {} nor at {}",
        source.display(),
        nested.display(),
        by_name.display()
    );
    by_name
}
