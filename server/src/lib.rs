//! The Stowage server: one process that serves the agent API and dashboard,
//! keeps every tenant's metadata in a database and its packs in an object
//! store.
//!
//! Two deployment modes share one code path. The embedded default needs no
//! configuration: `stowage-server` alone stores metadata in SQLite and objects
//! on the local filesystem under `./stowage-data/` and listens on
//! 127.0.0.1:8080. Scale-out points the same binary at PostgreSQL and an
//! S3-compatible store (see `docker-compose.yml`) and runs several instances
//! behind a load balancer; anything that must happen once coordinates through
//! the database, never through local state.
//!
//! Both databases are driven through sqlx's `Any` driver with portable SQL, so
//! each query is written once and the test suite runs it on both engines (see
//! [`db`]). Both object stores implement one trait, [`storage::ObjectStore`],
//! with an in-memory twin for tests.
//!
//! # Layout
//!
//! - [`cli`]: the command line (`serve` by default, `tenant create`, `token create`); `main.rs` only calls it.
//! - [`configuration`]: defaults ← TOML file ← `STOWAGE_*` environment, validated at start.
//! - [`startup`]: [`startup::Application`] opens everything and runs the HTTP server.
//! - [`telemetry`]: the `tracing` subscriber and request logging.
//! - [`routes`]: HTTP handlers (`/healthz`, `/readyz`, the agent API under `/api/v1`).
//! - [`domain`]: validated values such as [`domain::TenantName`] and [`domain::Role`].
//! - [`auth`]: password hashing (argon2id) and machine tokens (random secrets stored hashed).
//! - [`db`]: the only module with SQL; migrations are embedded from `migrations/`.
//! - [`storage`]: the only module that talks to S3; local, S3 and in-memory stores.
//! - [`rate_limit`]: per-credential and per-address request budgets (429 with `Retry-After`).
//! - [`scheduler`]: due schedule slots → jobs, expired leases → failed jobs, and the
//!   retention and garbage collection passes, on every instance.
//! - [`dispatcher`]: wakes an agent's waiting job claims when a job for it is queued.
//! - [`ingest`]: a pack upload body → checked temp file → object store → index, no HTTP.
//! - [`gc`]: garbage collection — mark from snapshot roots and live leases, sweep wholly dead packs.

pub mod auth;
pub mod cli;
pub mod configuration;
pub mod db;
pub mod dispatcher;
pub mod domain;
pub mod gc;
pub mod ingest;
pub mod operations;
pub mod rate_limit;
pub mod routes;
pub mod scheduler;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod views;
