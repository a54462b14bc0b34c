//! Known-answer vector for the version-1 snapshot record (FORMAT.md §
//! Snapshot record): its canonical JSON text and its id.

mod json_vectors;

use serde_json::json;
use stowage_protocol::ids::{AgentId, BlobId, PlanId, SnapshotId};
use stowage_protocol::snapshot::{
    RawPath, SnapshotRecord, SnapshotSummary, SourceError, decode_error_log, encode_error_log,
};

const FILE: &str = "snapshot_v1.json";

fn record() -> SnapshotRecord {
    SnapshotRecord {
        root: BlobId::from_bytes([0x11; 32]),
        parent: Some(SnapshotId::from_bytes([0x22; 32])),
        hostname: "db1.example".to_owned(),
        agent: AgentId::from_bytes([0x33; 16]),
        plan: Some(PlanId::from_bytes([0x44; 16])),
        paths: vec![
            RawPath::from("/etc"),
            RawPath::from("/srv/données"),
            RawPath(b"/srv/caf\xe9".to_vec()),
        ],
        tags: vec!["nightly".to_owned(), "db".to_owned()],
        started_at: "2026-11-26T01:00:00Z".parse().unwrap(),
        finished_at: "2026-11-26T01:03:07.25Z".parse().unwrap(),
        summary: SnapshotSummary {
            files: 1200,
            dirs: 80,
            total_bytes: 5_000_000_000,
            bytes_read: 700_000_000,
            bytes_added: 65_000_000,
            blobs_added: 70,
            errors: 1,
        },
        error_log: Some(BlobId::from_bytes([0x55; 32])),
    }
}

fn error_log() -> Vec<SourceError> {
    vec![SourceError {
        path: "/etc/shadow".into(),
        message: "Permission denied (os error 13)".to_owned(),
    }]
}

#[test]
fn a_record_matches_the_version_1_vector() {
    let record = record();
    let canonical = String::from_utf8(record.canonical_bytes()).unwrap();
    let error_log = String::from_utf8(encode_error_log(&error_log())).unwrap();
    let actual = json!({
        "canonical_json": canonical,
        "id": record.id().to_hex(),
        "error_log_json": error_log,
    });
    json_vectors::check(FILE, &actual);
}

#[test]
fn the_vector_json_parses_to_the_record_and_hashes_to_the_id() {
    let vectors = json_vectors::load(FILE);
    let text = vectors["canonical_json"].as_str().unwrap();
    let parsed = SnapshotRecord::from_json(text.as_bytes()).unwrap();
    assert_eq!(parsed, record());
    assert_eq!(SnapshotId::digest(text.as_bytes()).to_hex(), vectors["id"]);
    assert_eq!(parsed.canonical_bytes(), text.as_bytes());
    let log = vectors["error_log_json"].as_str().unwrap();
    assert_eq!(decode_error_log(log.as_bytes()).unwrap(), error_log());
}
