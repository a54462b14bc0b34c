//! The Stowage protocol: everything the agent and the server must agree on.
//!
//! This crate is pure: no files, sockets, databases or async runtime. The agent
//! and the server depend on it and never on each other, so a format can only
//! change here, in one reviewed place, with its known-answer vectors
//! (`protocol/tests/vectors/`). The byte layouts are in `FORMAT.md` and on the
//! types that read and write them.
//!
//! # The pieces, from a file to the server
//!
//! 1. [`chunker`] cuts file contents at content-defined boundaries (FastCDC,
//!    512 KiB / 1 MiB / 8 MiB by default, fixed per repository by [`config`]),
//!    so an insertion early in a file moves only nearby cut points.
//! 2. [`crypto::IdKey`] names each chunk by keyed BLAKE3 of its plaintext:
//!    equal chunks dedup within a tenant, and nobody without the key can test
//!    whether a tenant stores a given file.
//! 3. [`blob`] compresses (zstd, dropped when it does not shrink) and seals
//!    each chunk with XChaCha20-Poly1305 under the pack's data key; the
//!    associated data binds the blob id and kind, so blobs cannot be swapped.
//! 4. [`tree`] records a directory as sorted, deterministic entries: the same
//!    directory always gives the same bytes and therefore the same id, so an
//!    unchanged directory costs nothing in the next snapshot.
//! 5. [`pack`] groups sealed blobs into ~16 MiB objects with a plaintext table
//!    (ids, kinds, offsets, lengths, and the ids each tree references). The pack
//!    id is BLAKE3 of the bytes, so the server checks integrity on upload and on
//!    scrub without any key.
//! 6. [`snapshot`] is the only record the server reads: root tree, host,
//!    paths, times, counts.
//!
//! # Keys: who can read what
//!
//! Each tenant has an id key and an X25519 recovery key pair. Every pack gets a
//! fresh data key sealed to the recovery *public* key. An agent holding only the
//! id key and the public key can back up and dedup but cannot open any pack (a
//! write-only agent); one that unwrapped the recovery secret with the passphrase
//! ([`crypto::WrappedTenantKeys`], argon2id) can restore. The server holds
//! neither secret: it stores the wrapped blob and the public key.
//!
//! # What the server can do without keys
//!
//! Because pack tables are plaintext and list every tree's references, the
//! server alone can walk the reference graph from each live snapshot's root:
//! retention, mark-and-sweep garbage collection, repacking by copying sealed
//! byte ranges, scrubbing (re-hash packs) and replication. Blobs an upload
//! session was told are present stay protected by the session's lease until it
//! commits or expires, so a backup and a GC can run at the same time. The
//! table reveals only sizes and the shape of the graph, never names or
//! contents, because ids are keyed hashes.
//!
//! # Versioning
//!
//! Every structure carries a magic and a version. A committed layout is never
//! modified; a new layout takes a new version, and readers keep reading every
//! version that a release ever wrote. (The one exception is tree version 1,
//! which only pre-release builds wrote: trees are read at version 2 only, see
//! [`tree`].) Parsers check each length against the bytes that remain before
//! allocating, so hostile input fails fast and small.
#![warn(missing_docs)]

pub mod api;
pub mod blob;
pub mod chunker;
pub mod config;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod pack;
pub mod snapshot;
pub mod tree;
mod wire;

/// One line per format this build reads and writes, for `stowage --formats`
/// and the server's startup log, so an operator can see at a glance which
/// versions two installations share.
pub const FORMAT_SUMMARY: &str = "\
wrapped tenant keys  STWK v1
sealed blob          SB   v1
tree                 STRE v2
pack                 STWP v1 (trailer STWT)
repository config    stowage-repo v1
snapshot record      stowage-snapshot v1";
