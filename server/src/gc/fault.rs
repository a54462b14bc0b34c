//! Crash points for the garbage collection crash tests — a testing aid,
//! not a feature.
//!
//! A build with the cargo feature `fault-points` (the server's own test
//! builds) reads `STOWAGE_GC_FAULT`; when it names the point a run has
//! reached, the process aborts right there, as a power cut would, leaving
//! whatever that point leaves: nothing changed (`after_mark`), index rows
//! deleted but objects left (`after_rows`), an object deleted but its
//! pending record left (`after_object`), new repacked pack objects written
//! but not indexed (`after_repack_write`), a repack's transaction committed
//! but the old objects left (`after_repack_rows`). The crash test then runs `gc`
//! again and checks that it converges. In every other build [`reached`] is
//! an empty function and the variable is never read.

/// A place in a run where a crash test may kill it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The mark is done; nothing was changed yet.
    AfterMark,
    /// The first sweep transaction committed; its objects remain.
    AfterRows,
    /// The first object was deleted; its pending record remains.
    AfterObject,
    /// A repack wrote its first batch of new pack objects; nothing names
    /// them yet.
    AfterRepackWrite,
    /// A repack's first transaction committed; the old objects remain.
    AfterRepackRows,
}

impl FaultPoint {
    /// The value of `STOWAGE_GC_FAULT` that selects this point.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AfterMark => "after_mark",
            Self::AfterRows => "after_rows",
            Self::AfterObject => "after_object",
            Self::AfterRepackWrite => "after_repack_write",
            Self::AfterRepackRows => "after_repack_rows",
        }
    }
}

/// Aborts the process when `STOWAGE_GC_FAULT` names `point`.
#[cfg(feature = "fault-points")]
pub fn reached(point: FaultPoint) {
    if std::env::var("STOWAGE_GC_FAULT").ok().as_deref() == Some(point.name()) {
        eprintln!(
            "stowage-server: aborting at garbage collection fault point {}",
            point.name()
        );
        std::process::abort();
    }
}

/// Without the `fault-points` feature: nothing.
#[cfg(not(feature = "fault-points"))]
#[inline]
pub fn reached(_point: FaultPoint) {}
