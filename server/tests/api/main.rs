//! The server's integration tests: one binary, one module per area.
//!
//! PostgreSQL and S3 parts run when `STOWAGE_TEST_POSTGRES_URL` and
//! `STOWAGE_TEST_S3_ENDPOINT` (+ `_ACCESS_KEY`, `_SECRET_KEY`, optional
//! `_BUCKET`, `_REGION`) are set, and print a note and pass otherwise.
//! `TEST_LOG=1` shows the server's logs.

mod admin_cli;
mod agent_api;
mod binary;
mod commit;
mod configuration;
mod crash;
mod database;
mod health;
mod helpers;
mod ingest;
mod pack_upload;
mod rate_limits;
mod restore;
mod s3_faults;
mod snapshots;
mod storage;
