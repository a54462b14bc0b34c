//! The SQL migrations, compiled into the binary so the server never needs
//! the source tree at run time.
//!
//! Each backend has its own folder (`migrations/sqlite`, `migrations/postgres`)
//! of `<version>_<description>.sql` files, one change per file, the same
//! versions in both. To add one: write both files, then add a line to both
//! lists below; a test fails if a file on disk is missing from a list.
//! Applied migrations must never be edited — sqlx refuses to start when an
//! applied migration's checksum changed.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

/// Migrations of the SQLite schema, oldest first.
const SQLITE: &[Embedded] = &[
    (
        20_260_101_000_000,
        "foundation",
        include_str!("../../../migrations/sqlite/20260101000000_foundation.sql"),
    ),
    (
        20_261_126_000_000,
        "agents_and_ingest",
        include_str!("../../../migrations/sqlite/20261126000000_agents_and_ingest.sql"),
    ),
    (
        20_261_126_100_000,
        "complete_trees",
        include_str!("../../../migrations/sqlite/20261126100000_complete_trees.sql"),
    ),
    (
        20_261_201_000_000,
        "plans_and_jobs",
        include_str!("../../../migrations/sqlite/20261201000000_plans_and_jobs.sql"),
    ),
    (
        20_261_202_000_000,
        "job_leases",
        include_str!("../../../migrations/sqlite/20261202000000_job_leases.sql"),
    ),
    (
        20_261_203_000_000,
        "job_progress_presence_restore_tests",
        include_str!(
            "../../../migrations/sqlite/20261203000000_job_progress_presence_restore_tests.sql"
        ),
    ),
    (
        20_261_204_000_000,
        "api_keys",
        include_str!("../../../migrations/sqlite/20261204000000_api_keys.sql"),
    ),
    (
        20_261_205_100_000,
        "snapshot_pins",
        include_str!("../../../migrations/sqlite/20261205100000_snapshot_pins.sql"),
    ),
    (
        20_261_206_000_000,
        "garbage_collection",
        include_str!("../../../migrations/sqlite/20261206000000_garbage_collection.sql"),
    ),
    (
        20_261_207_000_000,
        "deletion_tombstones",
        include_str!("../../../migrations/sqlite/20261207000000_deletion_tombstones.sql"),
    ),
    (
        20_261_207_093_000,
        "gc_runs",
        include_str!("../../../migrations/sqlite/20261207093000_gc_runs.sql"),
    ),
    (
        20_261_208_000_000,
        "storage_usage",
        include_str!("../../../migrations/sqlite/20261208000000_storage_usage.sql"),
    ),
];

/// Migrations of the PostgreSQL schema, oldest first.
const POSTGRES: &[Embedded] = &[
    (
        20_260_101_000_000,
        "foundation",
        include_str!("../../../migrations/postgres/20260101000000_foundation.sql"),
    ),
    (
        20_261_126_000_000,
        "agents_and_ingest",
        include_str!("../../../migrations/postgres/20261126000000_agents_and_ingest.sql"),
    ),
    (
        20_261_126_100_000,
        "complete_trees",
        include_str!("../../../migrations/postgres/20261126100000_complete_trees.sql"),
    ),
    (
        20_261_201_000_000,
        "plans_and_jobs",
        include_str!("../../../migrations/postgres/20261201000000_plans_and_jobs.sql"),
    ),
    (
        20_261_202_000_000,
        "job_leases",
        include_str!("../../../migrations/postgres/20261202000000_job_leases.sql"),
    ),
    (
        20_261_203_000_000,
        "job_progress_presence_restore_tests",
        include_str!(
            "../../../migrations/postgres/20261203000000_job_progress_presence_restore_tests.sql"
        ),
    ),
    (
        20_261_204_000_000,
        "api_keys",
        include_str!("../../../migrations/postgres/20261204000000_api_keys.sql"),
    ),
    (
        20_261_205_100_000,
        "snapshot_pins",
        include_str!("../../../migrations/postgres/20261205100000_snapshot_pins.sql"),
    ),
    (
        20_261_206_000_000,
        "garbage_collection",
        include_str!("../../../migrations/postgres/20261206000000_garbage_collection.sql"),
    ),
    (
        20_261_207_000_000,
        "deletion_tombstones",
        include_str!("../../../migrations/postgres/20261207000000_deletion_tombstones.sql"),
    ),
    (
        20_261_207_093_000,
        "gc_runs",
        include_str!("../../../migrations/postgres/20261207093000_gc_runs.sql"),
    ),
    (
        20_261_208_000_000,
        "storage_usage",
        include_str!("../../../migrations/postgres/20261208000000_storage_usage.sql"),
    ),
];

/// The migrator for `backend`.
pub fn migrator(backend: Backend) -> Migrator {
    let embedded = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_on_disk(backend: &str) -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/");
        let mut names: Vec<String> = std::fs::read_dir(format!("{dir}{backend}"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| {
                std::path::Path::new(name)
                    .extension()
                    .is_some_and(|e| e == "sql")
            })
            .collect();
        names.sort();
        names
    }

    fn listed(embedded: &[Embedded]) -> Vec<String> {
        embedded
            .iter()
            .map(|(version, description, _)| format!("{version}_{description}.sql"))
            .collect()
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        assert_eq!(listed(SQLITE), files_on_disk("sqlite"));
        assert_eq!(listed(POSTGRES), files_on_disk("postgres"));
    }

    #[test]
    fn both_backends_have_the_same_versions() {
        let versions = |list: &[Embedded]| list.iter().map(|m| m.0).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
