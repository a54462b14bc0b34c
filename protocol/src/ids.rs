//! Typed identifiers shared by agent and server.
//!
//! Every id is a fixed-size byte array wrapped in its own type, so a `PackId`
//! can never be passed where a `BlobId` is expected. Ids print as lowercase
//! hex, parse from hex of either case and travel through serde as hex
//! strings, which keeps JSON, URLs and logs readable and identical.
//!
//! | type | bytes | origin |
//! |---|---|---|
//! | [`BlobId`] (alias [`ChunkId`]) | 32 | keyed BLAKE3 of a blob's plaintext (see `crypto`) |
//! | [`PackId`] | 32 | unkeyed BLAKE3 of the whole pack file |
//! | [`SnapshotId`] | 32 | unkeyed BLAKE3 of the snapshot record's canonical bytes |
//! | [`TenantId`], [`AgentId`], [`UserId`], [`PlanId`], [`JobId`], [`UploadSessionId`], [`ApiKeyId`] | 16 | random, from the OS source |

/// Longest slice of a rejected input quoted back in an [`IdParseError`].
const MAX_QUOTED_INPUT_CHARS: usize = 80;

/// Why a hex string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdParseProblem {
    /// The string has the wrong number of characters.
    WrongLength {
        /// How many characters the string had.
        found: usize,
    },
    /// The string contains a character that is not a hex digit.
    NotHex,
}

/// A string could not be parsed as an id.
///
/// The message names the id type, the expected length and the offending
/// input (truncated to 80 characters), e.g. `invalid BlobId "xyz": expected
/// 64 hex characters (32 bytes), found 3`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {type_name} {input:?}: expected {} hex characters ({expected_bytes} bytes), {}", expected_bytes * 2, problem_text(.problem))]
pub struct IdParseError {
    /// Name of the id type that was being parsed, e.g. `"BlobId"`.
    pub type_name: &'static str,
    /// Length of the id in bytes (the hex form has twice as many characters).
    pub expected_bytes: usize,
    /// The rejected input, truncated to 80 characters.
    pub input: String,
    /// What exactly is wrong with it.
    pub problem: IdParseProblem,
}

fn problem_text(problem: &IdParseProblem) -> String {
    match problem {
        IdParseProblem::WrongLength { found } => format!("found {found}"),
        IdParseProblem::NotHex => "found a character that is not a hex digit".to_owned(),
    }
}

/// Parses `N` bytes from hex (either case); shared by every id type.
pub(crate) fn parse_hex<const N: usize>(
    type_name: &'static str,
    s: &str,
) -> Result<[u8; N], IdParseError> {
    let error = |problem| IdParseError {
        type_name,
        expected_bytes: N,
        input: s.chars().take(MAX_QUOTED_INPUT_CHARS).collect(),
        problem,
    };
    if s.len() != N * 2 {
        return Err(error(IdParseProblem::WrongLength {
            found: s.chars().count(),
        }));
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(s, &mut bytes).map_err(|_| error(IdParseProblem::NotHex))?;
    Ok(bytes)
}

/// Draws `N` bytes from the operating system's random source.
///
/// # Panics
///
/// Panics if the OS random source fails: no id or key may ever be made from
/// anything weaker, and a machine without one cannot run Stowage at all.
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Defines a fixed-size byte newtype that prints, parses and serializes as
/// hex. Also used by `crypto` for public keys.
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $len:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of this id in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw id bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw id bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The id as lowercase hex.
            pub fn to_hex(&self) -> String {
                ::hex::encode(self.0)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut buf = [0u8; $len * 2];
                ::hex::encode_to_slice(self.0, &mut buf).map_err(|_| ::std::fmt::Error)?;
                f.write_str(std::str::from_utf8(&buf).map_err(|_| ::std::fmt::Error)?)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::IdParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::ids::parse_hex::<$len>(stringify!($name), s).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;

                impl ::serde::de::Visitor<'_> for HexVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, concat!("a ", stringify!($name), " as {} hex characters"), $len * 2)
                    }

                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(HexVisitor)
            }
        }
    };
}
pub(crate) use define_id;

macro_rules! random_id {
    ($name:ident) => {
        impl $name {
            /// A fresh id from the operating system's random source.
            ///
            /// # Panics
            ///
            /// Panics if the OS random source fails.
            pub fn random() -> Self {
                Self(os_random())
            }
        }
    };
}

macro_rules! digest_id {
    ($name:ident) => {
        impl $name {
            /// The id of `bytes`: their unkeyed BLAKE3 hash.
            pub fn digest(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }
        }
    };
}

define_id!(
    /// Id of a sealed blob (data chunk or tree): keyed BLAKE3 of its plaintext.
    BlobId,
    32
);
define_id!(
    /// Id of a pack file: unkeyed BLAKE3 of the whole pack.
    PackId,
    32
);
define_id!(
    /// Id of a snapshot: unkeyed BLAKE3 of the record's canonical JSON bytes.
    SnapshotId,
    32
);
define_id!(
    /// Id of a tenant (a customer account), random.
    TenantId,
    16
);
define_id!(
    /// Id of an enrolled agent, random.
    AgentId,
    16
);
define_id!(
    /// Id of a dashboard user, random.
    UserId,
    16
);
define_id!(
    /// Id of a backup plan, random.
    PlanId,
    16
);
define_id!(
    /// Id of a job dispatched to an agent, random.
    JobId,
    16
);
define_id!(
    /// Id of an operator API key, random.
    ApiKeyId,
    16
);
define_id!(
    /// Id of an upload session (the lease that protects blobs during a backup), random.
    UploadSessionId,
    16
);

/// A data chunk's id; chunks are blobs of kind "data".
pub type ChunkId = BlobId;

digest_id!(PackId);
digest_id!(SnapshotId);
random_id!(TenantId);
random_id!(AgentId);
random_id!(UserId);
random_id!(PlanId);
random_id!(JobId);
random_id!(UploadSessionId);
random_id!(ApiKeyId);

#[cfg(test)]
mod tests {
    use super::*;

    const HEX32: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn an_id_prints_as_lowercase_hex_and_parses_back() {
        // Arrange
        let id: BlobId = HEX32.parse().unwrap();

        // Act
        let printed = id.to_string();

        // Assert
        assert_eq!(printed, HEX32);
        assert_eq!(id.to_hex(), HEX32);
        assert_eq!(id.as_bytes()[31], 0x1f);
        assert_eq!(printed.parse::<BlobId>().unwrap(), id);
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let id: PackId = HEX32.to_uppercase().parse().unwrap();
        assert_eq!(id.to_string(), HEX32);
    }

    #[test]
    fn debug_names_the_type() {
        let id = TenantId::from_bytes([0xab; 16]);
        assert_eq!(format!("{id:?}"), format!("TenantId({})", "ab".repeat(16)));
    }

    #[test]
    fn the_wrong_length_is_rejected_with_type_length_and_input() {
        let err = "abcd".parse::<SnapshotId>().unwrap_err();
        assert_eq!(err.problem, IdParseProblem::WrongLength { found: 4 });
        assert_eq!(
            err.to_string(),
            "invalid SnapshotId \"abcd\": expected 64 hex characters (32 bytes), found 4"
        );
    }

    #[test]
    fn a_non_hex_character_is_rejected() {
        let bad = format!("{}zz", "0".repeat(30));
        let err = bad.parse::<AgentId>().unwrap_err();
        assert_eq!(err.problem, IdParseProblem::NotHex);
        assert!(err.to_string().contains("AgentId"), "{err}");
        assert!(err.to_string().contains("32 hex characters"), "{err}");
    }

    #[test]
    fn multibyte_input_of_the_right_byte_length_is_rejected_without_panicking() {
        let bad = "é".repeat(16);
        assert!(bad.parse::<UserId>().is_err());
    }

    #[test]
    fn a_long_input_is_truncated_in_the_error() {
        let err = "x".repeat(1000).parse::<JobId>().unwrap_err();
        assert_eq!(err.input.len(), 80);
        assert_eq!(err.problem, IdParseProblem::WrongLength { found: 1000 });
    }

    #[test]
    fn serde_uses_hex_strings() {
        let id = PlanId::from_bytes([0x0f; 16]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "0f".repeat(16)));
        assert_eq!(serde_json::from_str::<PlanId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<PlanId>("\"0f\"").is_err());
        assert!(serde_json::from_str::<PlanId>("15").is_err());
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(UploadSessionId::random(), UploadSessionId::random());
    }

    #[test]
    fn digest_ids_are_unkeyed_blake3() {
        // `printf abc | b3sum`
        let expected = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
        assert_eq!(PackId::digest(b"abc").to_string(), expected);
        assert_eq!(SnapshotId::digest(b"abc").to_string(), expected);
    }

    #[test]
    fn ids_order_by_their_bytes() {
        let low = BlobId::from_bytes([0; 32]);
        let high = BlobId::from_bytes([1; 32]);
        assert!(low < high);
    }

    proptest::proptest! {
        #[test]
        fn any_id_round_trips_through_text_and_json(bytes in proptest::prelude::any::<[u8; 32]>()) {
            let id = BlobId::from_bytes(bytes);
            proptest::prop_assert_eq!(id.to_string().parse::<BlobId>().unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<BlobId>(&json).unwrap(), id);
        }

        #[test]
        fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,100}") {
            let _ = text.parse::<TenantId>();
            let _ = text.parse::<BlobId>();
        }
    }
}
