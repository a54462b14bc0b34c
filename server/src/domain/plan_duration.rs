//! Durations in a plan — RPO, RTO, keep-within, restore-test cadence —
//! written as a whole number and a unit: `90s`, `30m`, `24h`, `7d`, `2w`.
//!
//! Stored as whole seconds, so the type holds seconds and nothing finer.

use std::fmt;
use std::time::Duration;

/// Longest accepted duration: ten years. Anything longer is a typo, and
/// the cap keeps every value far from overflowing a BIGINT of milliseconds.
const MAX_SECONDS: u64 = 10 * 366 * 86_400;

/// A positive whole number of seconds, at most ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlanDuration(u64);

/// Why a string is not a plan duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanDurationError {
    /// Not a number and a unit.
    #[error("{0:?} is not a duration like 90s, 30m, 24h, 7d or 2w")]
    Malformed(String),
    /// Zero.
    #[error("{0:?} is zero; a duration must be at least 1s")]
    Zero(String),
    /// Over ten years.
    #[error("{0:?} is longer than the longest duration, 3660d")]
    TooLong(String),
}

impl PlanDuration {
    /// Parses `24h` and the like.
    ///
    /// # Errors
    ///
    /// Names the input and the expected form.
    pub fn parse(text: &str) -> Result<Self, PlanDurationError> {
        let text = text.trim();
        let bad = || PlanDurationError::Malformed(text.to_owned());
        let (number, unit) = number_and_unit(text).ok_or_else(bad)?;
        let seconds_per_unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(bad()),
        };
        Self::from_secs(number.saturating_mul(seconds_per_unit)).map_err(|err| err.with_input(text))
    }

    /// A duration of `seconds`.
    ///
    /// # Errors
    ///
    /// Zero or more than ten years.
    pub fn from_secs(seconds: u64) -> Result<Self, PlanDurationError> {
        if seconds == 0 {
            Err(PlanDurationError::Zero(format!("{seconds}s")))
        } else if seconds > MAX_SECONDS {
            Err(PlanDurationError::TooLong(format!("{seconds}s")))
        } else {
            Ok(Self(seconds))
        }
    }

    /// Whole seconds, as stored.
    pub fn as_secs(self) -> u64 {
        self.0
    }

    /// As a `Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.0)
    }
}

/// Splits `24h` into 24 and "h": a whole number (digits only) followed by
/// a unit; `None` for anything else. Shared with the command line's
/// lifetimes, which accept fewer units.
pub fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    Some((number.parse().ok()?, unit))
}

impl PlanDurationError {
    fn with_input(self, text: &str) -> Self {
        match self {
            Self::Malformed(_) => Self::Malformed(text.to_owned()),
            Self::Zero(_) => Self::Zero(text.to_owned()),
            Self::TooLong(_) => Self::TooLong(text.to_owned()),
        }
    }
}

/// Formats a number of seconds as hours and minutes (`72h`, `23h30m`, `90s`),
/// so durations compared in one message share a unit.
pub fn format_seconds(seconds: u64) -> String {
    let (hours, minutes, secs) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (hours, minutes, secs) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) if h > 0 => format!("{h}h{m}m{s}s"),
        (_, m, s) => format!("{m}m{s}s"),
    }
}

impl fmt::Display for PlanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_seconds(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_scales_the_number() {
        let secs = |text| PlanDuration::parse(text).unwrap().as_secs();
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("30m"), 1800);
        assert_eq!(secs("24h"), 86_400);
        assert_eq!(secs(" 7d "), 7 * 86_400);
        assert_eq!(secs("2w"), 14 * 86_400);
    }

    #[test]
    fn malformed_zero_and_huge_durations_are_refused_naming_the_input() {
        for bad in ["", "24", "h", "1.5h", "-1h", "24 h", "24hours", "1y"] {
            assert_eq!(
                PlanDuration::parse(bad),
                Err(PlanDurationError::Malformed(bad.trim().to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            PlanDuration::parse("0h").unwrap_err().to_string(),
            "\"0h\" is zero; a duration must be at least 1s"
        );
        assert!(matches!(
            PlanDuration::parse("3661d"),
            Err(PlanDurationError::TooLong(_))
        ));
        assert!(PlanDuration::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn durations_display_in_hours_and_minutes() {
        assert_eq!(format_seconds(72 * 3600), "72h");
        assert_eq!(format_seconds(23 * 3600 + 1800), "23h30m");
        assert_eq!(format_seconds(90), "1m30s");
        assert_eq!(format_seconds(45), "45s");
        assert_eq!(format_seconds(1800), "30m");
        assert_eq!(format_seconds(3601), "1h0m1s");
    }
}
