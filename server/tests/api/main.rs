//! The server's integration tests: one binary, one module per area.
//!
//! PostgreSQL and S3 parts run when `STOWAGE_TEST_POSTGRES_URL` and
//! `STOWAGE_TEST_S3_ENDPOINT` (+ `_ACCESS_KEY`, `_SECRET_KEY`, optional
//! `_BUCKET`, `_REGION`) are set, and print a note and pass otherwise.
//! `TEST_LOG=1` shows the server's logs.

/// Declares the tests of a file's scenarios — each an `async fn(&TestApp)`
/// in scope: every scenario as its own test on the embedded stack (SQLite),
/// named `<scenario>::on_sqlite`, and all of them in order in one test
/// `$postgres` on a fresh PostgreSQL database (one database per file keeps
/// that run cheap; it passes with a note when PostgreSQL is not configured).
macro_rules! on_sqlite_and_postgres {
    ($postgres:ident: $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$scenario(&crate::helpers::spawn_app().await).await;
                }
            }
        )+

        #[tokio::test]
        async fn $postgres() {
            let Some(app) = crate::helpers::spawn_app_on_postgres(stringify!($postgres)).await
            else {
                return;
            };
            $($scenario(&app).await;)+
        }
    };
}

/// Declares each scenario of a file that builds its repository straight
/// into the index — an `async fn(&Stack)` (`gc_fixture`) — as its own test
/// on SQLite, and all of them in one test `$postgres`, each on a fresh
/// PostgreSQL database (skipped with a note when it is not configured).
macro_rules! on_both_stacks {
    ($postgres:ident: $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn on_sqlite() {
                    super::$scenario(&crate::gc_fixture::Stack::sqlite().await).await;
                }
            }
        )+

        #[tokio::test]
        async fn $postgres() {
            $(
                let Some(stack) =
                    crate::gc_fixture::Stack::postgres(stringify!($postgres)).await
                else {
                    return;
                };
                $scenario(&stack).await;
            )+
        }
    };
}

mod admin_cli;
mod agent_api;
mod binary;
mod commit;
mod configuration;
mod crash;
mod database;
mod gc;
mod gc_commit;
mod gc_crash;
mod gc_fixture;
mod gc_pass;
mod gc_real_packs;
mod gc_repack;
mod gc_repack_crash;
mod gc_repack_tombstone;
mod gc_resurrection;
mod gc_sessions;
mod health;
mod helpers;
mod ingest;
mod job_claims;
mod job_kinds;
mod operator_api;
mod operator_client;
mod pack_upload;
mod plans;
mod rate_limits;
mod restore;
mod retention;
mod s3_faults;
mod scheduler;
mod snapshots;
mod storage;
mod usage;
mod usage_record;
