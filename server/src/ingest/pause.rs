//! Process-level fault points: where a crash test stops the real server.
//!
//! The crash-safety claims ("a server killed between writing an object and
//! indexing it, or in the middle of a commit, comes back consistent") are
//! about the process dying, which an in-process hook cannot show: the kernel
//! must drop the open transaction and the half-done work. So the test starts
//! the real binary with `STOWAGE_FAULT_PAUSE=<point>` and
//! `STOWAGE_FAULT_MARKER=<file>`; when a request reaches that point the
//! server creates the marker file and waits forever, and the test, seeing the
//! file, kills it with SIGKILL at exactly that point — no sleeps, no races.
//!
//! Only a build with the cargo feature `fault-points` reads those variables;
//! the server's own tests turn it on through a dev-dependency on the crate
//! itself. In every other build [`pause_at`] is an empty, ready future that
//! the compiler removes, and the variable names are not even in the binary.

/// A named place where a crash test may stop the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// A pack upload wrote its object; nothing is indexed yet.
    AfterObjectWrite,
    /// A commit stored the snapshot and closed the session inside its
    /// transaction, which is not committed yet.
    CommitBeforeTransactionEnd,
}

impl PausePoint {
    /// The value of `STOWAGE_FAULT_PAUSE` that selects this point.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AfterObjectWrite => "after_object_write",
            Self::CommitBeforeTransactionEnd => "commit_before_transaction_end",
        }
    }
}

/// Waits forever at `point` when `STOWAGE_FAULT_PAUSE` names it, after
/// writing the file `STOWAGE_FAULT_MARKER` names; otherwise returns at once.
#[cfg(feature = "fault-points")]
pub async fn pause_at(point: PausePoint) {
    if std::env::var("STOWAGE_FAULT_PAUSE").ok().as_deref() != Some(point.name()) {
        return;
    }
    tracing::warn!(
        fault.point = point.name(),
        "pausing at a fault point until the process is killed"
    );
    if let Some(marker) = std::env::var_os("STOWAGE_FAULT_MARKER")
        && let Err(error) = tokio::fs::write(&marker, point.name()).await
    {
        tracing::error!("unable to write the fault marker file {marker:?} - {error}");
    }
    std::future::pending::<()>().await;
}

/// Without the `fault-points` feature: nothing, compiled away.
#[cfg(not(feature = "fault-points"))]
#[inline]
pub fn pause_at(_point: PausePoint) -> std::future::Ready<()> {
    std::future::ready(())
}

/// Whether this build stops at fault points (the `fault-points` feature).
pub const ENABLED: bool = cfg!(feature = "fault-points");
