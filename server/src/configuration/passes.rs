//! The server's own maintenance passes: how often every instance applies
//! the plans' retention policies, and how often it collects each tenant's
//! garbage ([`crate::scheduler::retention_pass`], [`crate::scheduler::gc_pass`]).
//!
//! ```toml
//! [retention]
//! interval = "1h"           # how often each instance applies the policies
//!
//! [gc]
//! interval = "24h"          # how often each tenant's garbage is collected
//! orphan_min_age = "1h"     # an unindexed pack object older than this goes
//! ```
//!
//! `STOWAGE_RETENTION_INTERVAL`, `STOWAGE_GC_INTERVAL` and
//! `STOWAGE_GC_ORPHAN_MIN_AGE` override them. Durations are a whole number
//! and a unit: `ms`, `s`, `m`, `h`.
//!
//! The orphan age must stay longer than any upload takes between writing a
//! pack object and indexing it, or the pass deletes a pack an upload is
//! about to index; so it may not go below [`MIN_ORPHAN_AGE`].

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::jobs::parse_duration;
use super::layers::Layers;

/// How often each instance applies the policies when nothing else is configured.
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_hours(1);
/// How often each tenant is collected when nothing else is configured.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_hours(24);
/// The smallest orphan age: far above the moment between an upload's
/// object write and its index commit, even on a slow store.
pub const MIN_ORPHAN_AGE: Duration = Duration::from_secs(10);
/// The longest interval either pass accepts: a week.
const MAX_INTERVAL: Duration = Duration::from_hours(24 * 7);

/// How often the retention pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Each instance applies every plan's policy this often, first at start.
    pub interval: Duration,
}

/// How the garbage collection pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcSettings {
    /// Each tenant is collected about this often (by whichever instance
    /// claims it first); the first pass comes one interval after start.
    pub interval: Duration,
    /// Passed to each run as [`crate::gc::GcOptions::orphan_min_age`].
    pub orphan_min_age: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

impl Default for GcSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_GC_INTERVAL,
            orphan_min_age: crate::gc::GcOptions::default().orphan_min_age,
        }
    }
}

/// `[retention]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRetention {
    interval: Option<String>,
}

/// `[gc]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileGc {
    interval: Option<String>,
    orphan_min_age: Option<String>,
}

pub(super) fn retention_settings(
    layers: &Layers<'_>,
    file: Option<FileRetention>,
) -> Result<RetentionSettings, ConfigError> {
    let file = file.unwrap_or_default();
    let interval = layers
        .get(
            "STOWAGE_RETENTION_INTERVAL",
            "retention.interval",
            file.interval,
        )
        .map_or(Ok(DEFAULT_RETENTION_INTERVAL), |v| {
            parse_duration(&v, Duration::from_secs(1), MAX_INTERVAL)
        })?;
    Ok(RetentionSettings { interval })
}

pub(super) fn gc_settings(
    layers: &Layers<'_>,
    file: Option<FileGc>,
) -> Result<GcSettings, ConfigError> {
    let file = file.unwrap_or_default();
    let defaults = GcSettings::default();
    let interval = layers
        .get("STOWAGE_GC_INTERVAL", "gc.interval", file.interval)
        .map_or(Ok(defaults.interval), |v| {
            parse_duration(&v, Duration::from_secs(1), MAX_INTERVAL)
        })?;
    let orphan_min_age = layers
        .get(
            "STOWAGE_GC_ORPHAN_MIN_AGE",
            "gc.orphan_min_age",
            file.orphan_min_age,
        )
        .map_or(Ok(defaults.orphan_min_age), |v| {
            parse_duration(&v, MIN_ORPHAN_AGE, Duration::from_hours(24 * 30))
        })?;
    Ok(GcSettings {
        interval,
        orphan_min_age,
    })
}
