//! `keys.json`: the tenant keys an agent holds, versioned.
//!
//! ```json
//! {"format":"stowage-agent-keys","version":1,
//!  "id_key":"<64 hex>","public_key":"<64 hex>","recovery_secret":"<64 hex>"}
//! ```
//!
//! A write-only agent's file has no `recovery_secret`: it can name and seal
//! blobs (id key, public key) but open none. A full agent's public key must
//! match its secret; a file where they disagree is refused rather than used
//! to write packs nobody could open.

use serde::{Deserialize, Serialize};
use stowage_protocol::crypto::{IdKey, RecoveryPublicKey, RecoverySecret, TenantKeys, WriteKeys};
use zeroize::Zeroizing;

const FORMAT: &str = "stowage-agent-keys";
const VERSION: u32 = 1;

/// The keys one agent holds.
#[derive(Debug, Clone)]
pub enum AgentKeys {
    /// Reads and writes: enrolled with the passphrase.
    Full(TenantKeys),
    /// Writes only: enrolled with `--write-only`.
    WriteOnly(WriteKeys),
}

/// `keys.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    /// Not JSON of the expected shape.
    #[error("not a Stowage keys file - {0}")]
    Malformed(String),
    /// Another format or version.
    #[error("format {format:?} version {version} is not {FORMAT:?} version {VERSION}")]
    Unsupported {
        /// The format named in the file.
        format: String,
        /// Its version.
        version: u32,
    },
    /// The public key is not the recovery secret's.
    #[error("the public key does not belong to the recovery secret; the file is damaged")]
    Mismatch,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    format: String,
    version: u32,
    id_key: String,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_secret: Option<String>,
}

impl AgentKeys {
    /// What any agent needs to back up.
    pub fn write_keys(&self) -> WriteKeys {
        match self {
            Self::Full(keys) => keys.write_keys(),
            Self::WriteOnly(keys) => keys.clone(),
        }
    }

    /// The keys that open backups, unless this agent is write-only.
    pub fn tenant_keys(&self) -> Option<&TenantKeys> {
        match self {
            Self::Full(keys) => Some(keys),
            Self::WriteOnly(_) => None,
        }
    }

    /// The id key (names blobs, seeds the chunker).
    pub fn id_key(&self) -> &IdKey {
        match self {
            Self::Full(keys) => &keys.id_key,
            Self::WriteOnly(keys) => &keys.id_key,
        }
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let write = self.write_keys();
        let file = KeysFile {
            format: FORMAT.into(),
            version: VERSION,
            id_key: hex::encode(write.id_key.as_bytes()),
            public_key: write.public_key.to_hex(),
            recovery_secret: self
                .tenant_keys()
                .map(|keys| hex::encode(*keys.recovery_secret.to_bytes())),
        };
        let mut text = serde_json::to_vec_pretty(&file).expect("a keys file serializes");
        text.push(b'\n');
        Zeroizing::new(text)
    }

    /// Parses the file's bytes.
    ///
    /// # Errors
    ///
    /// [`KeysFileError`] naming what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeysFileError> {
        let file: KeysFile = serde_json::from_slice(bytes)
            .map_err(|error| KeysFileError::Malformed(error.to_string()))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(KeysFileError::Unsupported {
                format: file.format,
                version: file.version,
            });
        }
        let id_key = IdKey::from_bytes(*hex32("id_key", &file.id_key)?);
        let public_key = RecoveryPublicKey::from_bytes(*hex32("public_key", &file.public_key)?);
        match file.recovery_secret {
            None => Ok(Self::WriteOnly(WriteKeys { id_key, public_key })),
            Some(secret) => {
                let recovery_secret =
                    RecoverySecret::from_bytes(*hex32("recovery_secret", &secret)?);
                if recovery_secret.public_key() != public_key {
                    return Err(KeysFileError::Mismatch);
                }
                Ok(Self::Full(TenantKeys {
                    id_key,
                    recovery_secret,
                }))
            }
        }
    }
}

fn hex32(field: &str, text: &str) -> Result<Zeroizing<[u8; 32]>, KeysFileError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, bytes.as_mut()).map_err(|error| {
        KeysFileError::Malformed(format!("{field} is not 64 hex digits - {error}"))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer: a fixed secret gives this file, byte for byte.
    #[test]
    fn a_full_keys_file_matches_its_known_answer_and_round_trips() {
        let keys = TenantKeys {
            id_key: IdKey::from_bytes([0x11; 32]),
            recovery_secret: RecoverySecret::from_bytes([0x22; 32]),
        };
        let json = AgentKeys::Full(keys.clone()).to_json();
        let text = std::str::from_utf8(&json).unwrap();
        let public = keys.public_key().to_hex();
        assert_eq!(
            text,
            format!(
                "{{\n  \"format\": \"stowage-agent-keys\",\n  \"version\": 1,\n  \"id_key\": \"{}\",\n  \"public_key\": \"{public}\",\n  \"recovery_secret\": \"{}\"\n}}\n",
                "11".repeat(32),
                "22".repeat(32)
            )
        );
        let back = AgentKeys::from_json(&json).unwrap();
        assert_eq!(back.tenant_keys().unwrap().public_key(), keys.public_key());
    }

    #[test]
    fn a_write_only_file_holds_no_secret() {
        let keys = TenantKeys::generate();
        let json = AgentKeys::WriteOnly(keys.write_keys()).to_json();
        assert!(
            !std::str::from_utf8(&json)
                .unwrap()
                .contains("recovery_secret")
        );
        let back = AgentKeys::from_json(&json).unwrap();
        assert!(back.tenant_keys().is_none());
        assert_eq!(back.write_keys().public_key, keys.public_key());
    }

    #[test]
    fn a_secret_that_does_not_match_its_public_key_is_refused() {
        let keys = TenantKeys::generate();
        let other = TenantKeys::generate();
        let mut value: serde_json::Value =
            serde_json::from_slice(&AgentKeys::Full(keys).to_json()).unwrap();
        value["public_key"] = other.public_key().to_hex().into();
        let error = AgentKeys::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(matches!(error, KeysFileError::Mismatch));
    }
}
