//! Snapshot records: `SnapshotRecord::from_json` on arbitrary bytes.
//!
//! A record's id is the hash of its canonical bytes, computed by the agent
//! and again by the server, so a record that parses must re-parse from its
//! canonical bytes to an equal record with the same canonical bytes (a record
//! with two canonical forms would get two ids).

#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage_protocol::ids::SnapshotId;
use stowage_protocol::snapshot::SnapshotRecord;

fuzz_target!(|data: &[u8]| {
    let record = match SnapshotRecord::from_json(data) {
        Ok(record) => record,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    record.validate().expect("a parsed record is valid");
    let canonical = record.canonical_bytes();
    let again = SnapshotRecord::from_json(&canonical).unwrap_or_else(|err| {
        panic!(
            "canonical bytes {:?} do not parse: {err}",
            String::from_utf8_lossy(&canonical)
        )
    });
    assert_eq!(
        again, record,
        "the record changed through its canonical bytes"
    );
    assert!(again.canonical_bytes() == canonical, "two canonical forms");
    assert_eq!(record.id(), SnapshotId::digest(&canonical));
});
