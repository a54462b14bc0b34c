//! The Stowage agent: it walks, chunks, hashes, compresses, encrypts, packs and
//! uploads backups, and restores and verifies them, through the server's API.
//!
//! The agent depends on `stowage-protocol` for every format and never on the
//! server crate: the two agree only through the protocol.
//!
//! # Layout
//! - [`cli`]: argument parsing and the exit-code contract (0 success, 3 partial —
//!   some source files unreadable — and 1 failure); [`commands`]: one module
//!   per command; [`daemon`]: running the server's jobs as a service;
//!   [`service`]: the systemd unit that runs it.
//! - [`transport`]: the one HTTP client for talking to the server — plain
//!   HTTP refused except to loopback, and certificates checked against the
//!   system roots, a CA file or a pinned fingerprint. [`api`]: one typed
//!   method per endpoint, with retries.
//! - [`profile`]: the configuration directory `enroll` writes; [`context`]:
//!   what every other command loads from it.
//! - [`restore_test`]: a rehearsal restore into a scratch directory, every
//!   byte checked against the snapshot, timed.
//! - [`snapshot_select`]: `latest`, ids and prefixes; [`units`] and
//!   [`throttle`]: rates on the command line and their enforcement;
//!   [`tally`]: running counts a watcher reads while a job runs.

pub mod api;
pub mod backup;
pub mod cli;
pub mod commands;
pub mod context;
pub mod daemon;
pub mod passphrase;
pub mod profile;
pub mod reader;
pub mod restore;
pub mod restore_test;
pub mod service;
pub mod snapshot_select;
pub mod tally;
pub mod throttle;
pub mod transport;
pub mod units;
pub mod upload;
pub mod verify;
