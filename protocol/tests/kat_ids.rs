//! Known answers for ids: digests, text and JSON forms.

mod kat_support;

use kat_support::check_vector;
use stowage_protocol::ids::{AgentId, BlobId, PackId, SnapshotId, TenantId};

#[test]
fn digest_ids_match_the_stored_vectors() {
    // Independently: `printf '' | b3sum` and `printf 'stowage pack' | b3sum`.
    let lines = [
        format!("pack_id(\"\") = {}", PackId::digest(b"")),
        format!(
            "pack_id(\"stowage pack\") = {}",
            PackId::digest(b"stowage pack")
        ),
        format!(
            "snapshot_id(\"stowage snapshot\") = {}",
            SnapshotId::digest(b"stowage snapshot")
        ),
    ];
    check_vector("ids.txt", &lines.join("\n"));
}

#[test]
fn ids_serialize_as_lowercase_hex_json_strings() {
    let tenant = TenantId::from_bytes(kat_support::counting_bytes(0xf0));
    let agent: AgentId = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
    let blob = BlobId::from_bytes(kat_support::counting_bytes(0));
    let json = serde_json::json!({ "tenant": tenant, "agent": agent, "blob": blob });
    check_vector("ids.json", &serde_json::to_string(&json).unwrap());
}
