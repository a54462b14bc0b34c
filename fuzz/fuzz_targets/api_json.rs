//! API bodies and ids: what the server parses from any client on the network.
//!
//! The first input byte picks the body type (mod the number of types); the
//! rest is parsed as that type's JSON. Whatever parses must serialize, parse
//! again, and serialize to the same bytes. The rest is also parsed as the
//! text of every id type, which must print back as the same hex.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use stowage_protocol::api::{
    ApiError, CommitSnapshotRequest, CommitSnapshotResponse, EnrollRequest, EnrollResponse,
    LocateBlobsRequest, LocateBlobsResponse, MissingBlobsRequest, MissingBlobsResponse,
    OpenUploadSessionRequest, PackUploadResponse, SnapshotList, SnapshotListItem, TenantKeyBundle,
    UploadSession,
};
use stowage_protocol::ids::{
    AgentId, BlobId, JobId, PackId, PlanId, SnapshotId, TenantId, UploadSessionId, UserId,
};

/// Parses `json` as `T`; if it parses, checks that its JSON is a fixed point.
fn round_trip<T: Serialize + DeserializeOwned>(json: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(json).ok()?;
    let first = serde_json::to_vec(&value).expect("an API body serializes");
    let again: T = serde_json::from_slice(&first).unwrap_or_else(|err| {
        panic!(
            "{} JSON {:?} does not parse back: {err}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&first)
        )
    });
    let second = serde_json::to_vec(&again).expect("an API body serializes");
    assert!(
        first == second,
        "{} changed through JSON",
        std::any::type_name::<T>()
    );
    Some(value)
}

fn check_id<T: std::str::FromStr + std::fmt::Display>(text: &str) {
    if let Ok(id) = text.parse::<T>() {
        assert!(
            id.to_string().eq_ignore_ascii_case(text),
            "id {text:?} printed as {id}"
        );
    }
}

fn check_ids(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    check_id::<BlobId>(text);
    check_id::<PackId>(text);
    check_id::<SnapshotId>(text);
    check_id::<TenantId>(text);
    check_id::<AgentId>(text);
    check_id::<UserId>(text);
    check_id::<PlanId>(text);
    check_id::<JobId>(text);
    check_id::<UploadSessionId>(text);
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, json)) = data.split_first() else {
        return;
    };
    match selector % 15 {
        0 => drop(round_trip::<ApiError>(json)),
        1 => drop(round_trip::<EnrollRequest>(json)),
        2 => drop(round_trip::<EnrollResponse>(json)),
        3 => {
            if let Some(bundle) = round_trip::<TenantKeyBundle>(json) {
                // The config travels as a string and is parsed on demand.
                let _ = bundle.repo_config();
            }
        }
        4 => drop(round_trip::<OpenUploadSessionRequest>(json)),
        5 => drop(round_trip::<UploadSession>(json)),
        6 => drop(round_trip::<MissingBlobsRequest>(json)),
        7 => drop(round_trip::<MissingBlobsResponse>(json)),
        8 => drop(round_trip::<PackUploadResponse>(json)),
        9 => drop(round_trip::<CommitSnapshotRequest>(json)),
        10 => drop(round_trip::<CommitSnapshotResponse>(json)),
        11 => drop(round_trip::<SnapshotListItem>(json)),
        12 => drop(round_trip::<SnapshotList>(json)),
        13 => drop(round_trip::<LocateBlobsRequest>(json)),
        _ => drop(round_trip::<LocateBlobsResponse>(json)),
    }
    check_ids(json);
});
