//! Key material stored or sent by others: wrapped tenant keys (170 bytes, or
//! 340 hex characters in API bodies) and a pack's sealed data key (80 bytes).
//!
//! Only parsing and validation run here: `WrappedTenantKeys::unwrap` costs an
//! argon2id run of at least 64 MiB, far too slow for a fuzz loop, and its
//! parameters are exactly what `from_bytes` validates. Opening a sealed data
//! key is cheap (one X25519 and one AEAD), so the first 80 input bytes are
//! also opened with the vectors' recovery secret.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage_protocol::crypto::{
    SEALED_DATA_KEY_LEN, SealedDataKey, WRAPPED_TENANT_KEYS_LEN, WrappedTenantKeys, open_data_key,
};
use stowage_protocol_fuzz::recovery_secret;

fn check_wrapped(bytes: &[u8]) {
    let wrapped = match WrappedTenantKeys::from_bytes(bytes) {
        Ok(wrapped) => wrapped,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    assert_eq!(bytes.len(), WRAPPED_TENANT_KEYS_LEN);
    assert_eq!(wrapped.as_bytes().as_slice(), bytes);
    assert_eq!(wrapped.to_bytes().as_slice(), bytes);
    wrapped
        .params()
        .validate()
        .expect("accepted keys have valid argon2id parameters");
    assert_eq!(wrapped.public_key().as_bytes(), &bytes[34..66]);

    let json = serde_json::to_string(&wrapped).expect("wrapped keys serialize");
    let back: WrappedTenantKeys = serde_json::from_str(&json).expect("their JSON parses");
    assert!(back == wrapped, "wrapped keys changed through JSON");
}

/// The API form: a JSON string of hex.
fn check_hex(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let value = serde_json::Value::String(text.to_owned());
    if let Ok(wrapped) = serde_json::from_value::<WrappedTenantKeys>(value) {
        assert!(
            hex::encode(wrapped.as_bytes()).eq_ignore_ascii_case(text),
            "hex {text:?} parsed to other bytes"
        );
    }
}

fn check_sealed_data_key(bytes: &[u8]) {
    let Some(sealed) = bytes.first_chunk::<SEALED_DATA_KEY_LEN>() else {
        return;
    };
    let sealed = SealedDataKey::from_bytes(*sealed);
    assert_eq!(sealed.as_bytes(), &bytes[..SEALED_DATA_KEY_LEN]);
    if let Err(err) = open_data_key(&sealed, &recovery_secret()) {
        assert!(!err.to_string().is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    check_wrapped(data);
    check_hex(data);
    check_sealed_data_key(data);
});
