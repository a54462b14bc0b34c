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
