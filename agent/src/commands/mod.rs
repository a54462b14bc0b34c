//! One module per `stowage` command. Each exposes
//! `async fn run(global: &Global, args: …) -> anyhow::Result<Outcome>`.

pub mod backup;
pub mod daemon;
pub mod enroll;
pub mod ls;
pub mod restore;
pub mod service;
pub mod snapshots;
pub mod verify;
