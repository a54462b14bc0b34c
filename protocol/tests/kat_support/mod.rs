//! Shared by the known-answer tests: fixed inputs and the vector files.
//!
//! Vectors live in `protocol/tests/vectors/`. A test compares what the code
//! produces now with the stored bytes, so any change of a version-1 layout
//! fails. `STOWAGE_BLESS=1 cargo test -p stowage-protocol --test kat_…`
//! writes missing or changed vectors instead; only do that for a *new*
//! vector, never to make a changed layout pass.

#![allow(dead_code)]

use std::path::PathBuf;

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

/// Compares `actual` with the stored vector `name` (text, trailing newline ignored).
pub fn check_vector(name: &str, actual: &str) {
    let path = vector_path(name);
    if std::env::var_os("STOWAGE_BLESS").is_some() {
        std::fs::write(&path, format!("{actual}\n")).expect("write vector");
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "vector {} is missing ({err}); actual value:\n{actual}",
            path.display()
        )
    });
    assert_eq!(actual, stored.trim_end(), "vector {name} changed");
}

/// Reads a stored hex vector as bytes.
pub fn read_hex(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vector_path(name)).expect("read vector");
    hex::decode(text.trim()).expect("vector is hex")
}

/// Bytes 0, 1, 2, … as a fixed test key.
pub fn counting_bytes<const N: usize>(start: u8) -> [u8; N] {
    core::array::from_fn(|i| start.wrapping_add(u8::try_from(i % 256).unwrap()))
}
