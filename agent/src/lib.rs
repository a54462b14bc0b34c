//! The Stowage agent: it walks, chunks, hashes, compresses, encrypts, packs and
//! uploads backups, and restores and verifies them, through the server's API.
//!
//! The agent depends on `stowage-protocol` for every format and never on the
//! server crate: the two agree only through the protocol.
//!
//! # Layout
//! - `cli`: argument parsing and the exit-code contract (0 success, 3 partial —
//!   some source files unreadable — and 1 failure).
//! - [`transport`]: the one HTTP client for talking to the server — plain
//!   HTTP refused except to loopback, and certificates checked against the
//!   system roots, a CA file or a pinned fingerprint.

pub mod cli;
pub mod transport;
