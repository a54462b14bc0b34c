//! The parts of `stowage daemon` ([`crate::commands::daemon`]) below its
//! main loop.
//!
//! # Layout
//! - [`work`]: what each job kind does (backup, restore, verify, restore
//!   test), through the same code as the matching commands.
//! - [`progress`]: the running job's counters, reported with a recent rate
//!   every 10 s; the report renews the lease, and a 404 means the job was
//!   taken back.
//! - [`supervise`]: one job to its end — finished, taken back, or
//!   abandoned by shutdown after the stop grace; [`shutdown`]: SIGTERM and
//!   SIGINT, counted.
//! - [`facts`]: what the agent tells the server about its host.

pub mod facts;
pub mod progress;
pub mod shutdown;
pub mod supervise;
pub mod work;
