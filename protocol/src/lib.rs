//! The Stowage protocol: everything the agent and the server must agree on.
//!
//! (crate docs to be written: format overview, key hierarchy, GC design)
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
