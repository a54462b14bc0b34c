//! Shared by the tree, pack and snapshot known-answer tests, whose vectors are
//! JSON objects of named fields: compares what the code produces with the
//! committed file, or writes the file when `STOWAGE_BLESS=1` (only for a new
//! vector, after checking its bytes against FORMAT.md by hand).

use std::path::PathBuf;

fn path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

/// The committed vector file, parsed.
pub fn load(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path(file))
        .unwrap_or_else(|e| panic!("cannot read vector file {file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("vector file {file} is not JSON: {e}"))
}

/// Asserts that `actual` equals the committed vectors field by field (or blesses them).
pub fn check(file: &str, actual: &serde_json::Value) {
    if std::env::var_os("STOWAGE_BLESS").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(path(file), text).unwrap();
        return;
    }
    let expected = load(file);
    let Some(fields) = expected.as_object() else {
        panic!("vector file {file} is not a JSON object");
    };
    for (key, value) in fields {
        assert_eq!(
            &actual[key], value,
            "vector {file} field {key:?} changed: a committed layout must never change"
        );
    }
    assert_eq!(
        actual, &expected,
        "vector {file} has fields the code no longer produces"
    );
}

/// Hex-decodes a string field of a vector.
#[allow(dead_code, reason = "not every known-answer test has hex fields")]
pub fn hex_field(vectors: &serde_json::Value, key: &str) -> Vec<u8> {
    let text = vectors[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key:?} is not a string"));
    hex::decode(text).unwrap_or_else(|e| panic!("vector field {key:?} is not hex: {e}"))
}
