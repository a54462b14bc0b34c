//! Sizes as people type them: `500M`, `10G`, `2T` (powers of 1024, as
//! `df -h` and the agent's rates read them), or a plain number of bytes.

use std::fmt;

use super::number_and_unit;

/// A size in bytes, at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

/// A size that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a size; write a whole number of bytes, or one followed by K, M, G or T (powers of 1024), e.g. 500M"
)]
pub struct ByteSizeError(pub String);

impl ByteSize {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// [`ByteSizeError`] for anything but a positive whole number with an
    /// optional K, M, G or T, or a size beyond 2^63 bytes.
    pub fn parse(text: &str) -> Result<Self, ByteSizeError> {
        let trimmed = text.trim();
        let refuse = || ByteSizeError(text.to_owned());
        let (number, shift) = match number_and_unit(trimmed) {
            None => (trimmed.parse::<u64>().map_err(|_| refuse())?, 0),
            Some((number, unit)) => {
                let shift = match unit.to_ascii_uppercase().as_str() {
                    "K" | "KB" | "KIB" => 10,
                    "M" | "MB" | "MIB" => 20,
                    "G" | "GB" | "GIB" => 30,
                    "T" | "TB" | "TIB" => 40,
                    _ => return Err(refuse()),
                };
                (number, shift)
            }
        };
        let bytes = number
            .checked_mul(1u64 << shift)
            .filter(|bytes| *bytes > 0 && i64::try_from(*bytes).is_ok())
            .ok_or_else(refuse)?;
        Ok(Self(bytes))
    }

    /// Wraps a stored number of bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_powers_of_1024_and_print_back() {
        let cases = [
            ("4096", 4096, "4K"),
            ("500M", 500 << 20, "500M"),
            ("10g", 10 << 30, "10G"),
            ("2TiB", 2 << 40, "2T"),
            ("1500", 1500, "1500"),
        ];

        for (text, bytes, shown) in cases {
            let size = ByteSize::parse(text).unwrap();
            assert_eq!((size.bytes(), size.to_string().as_str()), (bytes, shown));
        }
    }

    #[test]
    fn zero_units_unknown_and_overflow_are_refused_naming_the_input() {
        for bad in ["0", "0M", "10Q", "M", "-5G", "9999999999T", ""] {
            let error = ByteSize::parse(bad).unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
