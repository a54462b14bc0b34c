//! Human units on the command line: transfer rates (`--limit-upload 20M`),
//! lengths of time (`--stop-grace 5m`), and the byte counts and rates the
//! agent prints.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A transfer rate in bytes per second, parsed from `20M`, `512k`,
/// `1.5G`, `100MiB/s` or a plain byte count. K, M, G, T are powers of 1024
/// (as `restic --limit-upload` and `rsync --bwlimit` take them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(u64);

impl Rate {
    /// Bytes per second.
    pub const fn bytes_per_second(self) -> u64 {
        self.0
    }

    /// A rate of `bytes` per second.
    pub const fn from_bytes_per_second(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        let lower = lower.strip_suffix("/s").unwrap_or(&lower);
        let lower = lower
            .strip_suffix("ib")
            .or_else(|| lower.strip_suffix('b'))
            .unwrap_or(lower);
        let (number, multiplier) = match lower.chars().last() {
            Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
            Some('m') => (&lower[..lower.len() - 1], 1 << 20),
            Some('g') => (&lower[..lower.len() - 1], 1 << 30),
            Some('t') => (&lower[..lower.len() - 1], 1 << 40),
            _ => (lower, 1),
        };
        let value: f64 = number.trim().parse().map_err(|_| {
            format!("{text:?} is not a rate like 20M, 512K or 1.5G (bytes per second)")
        })?;
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let bytes = (value * multiplier as f64).round() as u64;
        if !value.is_finite() || value <= 0.0 || bytes == 0 {
            return Err(format!(
                "{text:?}: a rate must be more than 0 bytes per second"
            ));
        }
        Ok(Self(bytes))
    }
}

/// A length of time, parsed from `90s`, `5m`, `2h` or a plain number of
/// seconds, and shown the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim().to_ascii_lowercase();
        let (number, unit) = match trimmed.chars().last() {
            Some('s') => (&trimmed[..trimmed.len() - 1], 1),
            Some('m') => (&trimmed[..trimmed.len() - 1], 60),
            Some('h') => (&trimmed[..trimmed.len() - 1], 3600),
            _ => (trimmed.as_str(), 1),
        };
        let value: u64 = number
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a length of time like 90s, 5m or 1h"))?;
        let seconds = value
            .checked_mul(unit)
            .ok_or_else(|| format!("{text:?} is too long a time"))?;
        Ok(Self(Duration::from_secs(seconds)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        match seconds {
            0 => write!(f, "0s"),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

/// A byte count for people: `1.5 GiB`, `512 B`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        #[allow(clippy::cast_precision_loss)]
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_binary_suffixes() {
        for (text, bytes) in [
            ("20M", 20 << 20),
            ("512k", 512 << 10),
            ("1.5G", 3 << 29),
            ("100MiB/s", 100 << 20),
            ("4096", 4096),
            ("2mb", 2 << 20),
        ] {
            assert_eq!(
                text.parse::<Rate>().unwrap().bytes_per_second(),
                bytes,
                "{text}"
            );
        }
    }

    #[test]
    fn spans_parse_seconds_minutes_and_hours_and_print_back() {
        for (text, seconds, shown) in [
            ("90s", 90, "90s"),
            ("5m", 300, "5m"),
            ("2H", 7200, "2h"),
            ("120", 120, "2m"),
            ("0", 0, "0s"),
        ] {
            let span = text.parse::<Span>().unwrap();
            assert_eq!(span.0.as_secs(), seconds, "{text}");
            assert_eq!(span.to_string(), shown, "{text}");
        }
        for bad in ["soon", "5 min", "-1m", ""] {
            assert!(
                bad.parse::<Span>()
                    .unwrap_err()
                    .contains(&format!("{bad:?}"))
            );
        }
    }

    #[test]
    fn a_bad_rate_names_the_input() {
        for text in ["fast", "0", "-1M", ""] {
            let error = text.parse::<Rate>().unwrap_err();
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn byte_counts_read_like_people_write_them() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(3 << 30).to_string(), "3.0 GiB");
    }
}
