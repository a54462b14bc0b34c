//! Lifetimes on the command line: a whole number and a unit, `90s`, `30m`,
//! `24h` or `7d`.

use std::time::Duration;

/// Longest accepted lifetime: a year. An enrollment token that lives longer
/// is a standing credential, not a one-time token.
const MAX_TTL: Duration = Duration::from_hours(365 * 24);

/// Parses a lifetime such as `24h`; for clap's `value_parser`.
///
/// # Errors
///
/// A sentence naming the input and the expected form.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a lifetime like 90s, 30m, 24h or 7d");
    let (number, unit) = crate::domain::number_and_unit(text).ok_or_else(bad)?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let ttl = Duration::from_secs(number.saturating_mul(seconds_per_unit));
    if ttl.is_zero() {
        Err(format!("{text:?} is zero; a lifetime must be at least 1s"))
    } else if ttl > MAX_TTL {
        Err(format!(
            "{text:?} is longer than the longest lifetime, 365d"
        ))
    } else {
        Ok(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_scales_the_number() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("30m").unwrap(), Duration::from_mins(30));
        assert_eq!(parse_ttl("24h").unwrap(), Duration::from_hours(24));
        assert_eq!(parse_ttl(" 7d ").unwrap(), Duration::from_hours(7 * 24));
    }

    #[test]
    fn malformed_zero_and_huge_lifetimes_are_refused_with_a_reason() {
        for bad in ["", "24", "h", "1.5h", "-1h", "24 h", "24hours", "2w"] {
            let err = parse_ttl(bad).unwrap_err();
            assert!(err.contains("is not a lifetime like"), "{bad}: {err}");
        }
        assert!(parse_ttl("0h").unwrap_err().contains("is zero"));
        assert!(parse_ttl("366d").unwrap_err().contains("longest lifetime"));
        assert!(parse_ttl("99999999999999999999d").is_err());
    }
}
