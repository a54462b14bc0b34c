//! The `Range` header of a pack read: one byte range, in any of the three
//! forms of RFC 9110 §14.1.2 (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
//!
//! Agents read one blob (or one run of neighbouring blobs) per request, so a
//! single range is all that is served; a multi-part answer
//! (`multipart/byteranges`) would only add a format for them to parse.
//! Anything this parser refuses is a 400 naming the problem, rather than
//! the RFC's "ignore the header and send the whole pack", because an agent
//! that sent a broken header has a bug that a silent 128 MiB answer hides.

use std::ops::Range;

/// A parsed `Range` header, not yet checked against the pack's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`: both ends inclusive.
    Bounded {
        /// First byte wanted.
        first: u64,
        /// Last byte wanted (may lie past the end; the answer is clipped).
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// Why a `Range` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// More than one range was asked for.
    #[error(
        "the Range header {0:?} asks for several ranges; only one range per request is supported"
    )]
    Multiple(String),
    /// The header does not have the form `bytes=a-b`, `bytes=a-` or `bytes=-n`.
    #[error(
        "the Range header {header:?} is malformed - {problem}; expected bytes=FIRST-LAST, bytes=FIRST- or bytes=-COUNT"
    )]
    Malformed {
        /// The header as received.
        header: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl ByteRange {
    /// Parses the value of a `Range` header.
    ///
    /// # Errors
    ///
    /// [`RangeError::Multiple`] for a list of ranges; [`RangeError::Malformed`]
    /// for another unit than `bytes`, missing or non-decimal positions, or a
    /// last byte before the first.
    pub fn parse(header: &str) -> Result<Self, RangeError> {
        let malformed = |problem| RangeError::Malformed {
            header: header.to_owned(),
            problem,
        };
        let (unit, spec) = header
            .trim()
            .split_once('=')
            .ok_or_else(|| malformed("it has no '='"))?;
        if !unit.trim().eq_ignore_ascii_case("bytes") {
            return Err(malformed("only the unit bytes is supported"));
        }
        if spec.contains(',') {
            return Err(RangeError::Multiple(header.to_owned()));
        }
        let (first, last) = spec
            .trim()
            .split_once('-')
            .ok_or_else(|| malformed("the range has no '-'"))?;
        let number = |text: &str| -> Result<u64, RangeError> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("a position is not a decimal number"));
            }
            text.parse()
                .map_err(|_| malformed("a position is too large"))
        };
        match (first.is_empty(), last.is_empty()) {
            (true, true) => Err(malformed("the range names no position")),
            (true, false) => Ok(Self::Suffix(number(last)?)),
            (false, true) => Ok(Self::From(number(first)?)),
            (false, false) => {
                let (first, last) = (number(first)?, number(last)?);
                if last < first {
                    return Err(malformed("the last byte comes before the first"));
                }
                Ok(Self::Bounded { first, last })
            }
        }
    }

    /// The bytes this range selects in an object of `size` bytes, clipped to
    /// its end, or `None` when it selects none (starts at or past the end,
    /// or is an empty suffix): the request is then unsatisfiable (416).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        let range = match self {
            Self::Bounded { first, last } => first..last.saturating_add(1).min(size),
            Self::From(first) => first..size,
            Self::Suffix(count) => size.saturating_sub(count)..size,
        };
        (range.start < range.end).then_some(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_and_resolve_against_the_size() {
        let cases = [
            ("bytes=0-99", 0..100),
            ("bytes=10-10", 10..11),
            ("bytes=900-5000", 900..1000),
            ("bytes=990-", 990..1000),
            ("bytes=-10", 990..1000),
            ("bytes=-5000", 0..1000),
            (" Bytes = 1-2 ", 1..3),
        ];
        for (header, expected) in cases {
            let range = ByteRange::parse(header).unwrap();

            assert_eq!(range.resolve(1000), Some(expected), "{header}");
        }
    }

    #[test]
    fn a_range_starting_at_or_past_the_end_or_an_empty_suffix_is_unsatisfiable() {
        for header in [
            "bytes=1000-1001",
            "bytes=1000-",
            "bytes=-0",
            "bytes=5000-6000",
        ] {
            let range = ByteRange::parse(header).unwrap();

            assert_eq!(range.resolve(1000), None, "{header}");
        }
    }

    #[test]
    fn several_ranges_are_refused_as_such() {
        let error = ByteRange::parse("bytes=0-1,5-6").unwrap_err();

        assert!(matches!(error, RangeError::Multiple(_)));
        assert!(error.to_string().contains("only one range"), "{error}");
    }

    #[test]
    fn malformed_headers_are_refused_naming_the_problem() {
        let cases = [
            ("bytes 0-1", "no '='"),
            ("items=0-1", "unit bytes"),
            ("bytes=01", "no '-'"),
            ("bytes=-", "no position"),
            ("bytes=a-b", "decimal"),
            ("bytes=+1-2", "decimal"),
            ("bytes=5-4", "before the first"),
            ("bytes=99999999999999999999-", "too large"),
        ];
        for (header, problem) in cases {
            let error = ByteRange::parse(header).unwrap_err();

            assert!(matches!(error, RangeError::Malformed { .. }), "{header}");
            let message = error.to_string();
            assert!(message.contains(problem), "{header}: {message}");
            assert!(message.contains(header), "{header}: {message}");
        }
    }
}
