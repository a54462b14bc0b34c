//! Trees: `TreeNode::decode` on arbitrary bytes, and canonical form.
//!
//! The decoder promises to reject anything the serializer would not have
//! written, so a leaf that decodes must come back byte for byte from
//! `TreeBuilder` (else one directory would have two encodings, two ids, and
//! dedup of trees would break), with the refs the pack table needs. An index
//! must be exactly its header plus its part ids.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{
    EntryContent, NODE_INDEX, TREE_MAGIC, TREE_VERSION, TreeBuilder, TreeEntry, TreeNode,
    join_parts,
};

/// A cheap stand-in for the keyed tree id: any injective-enough function will do.
fn plain_id(plaintext: &[u8]) -> BlobId {
    BlobId::from_bytes(*blake3::hash(plaintext).as_bytes())
}

/// The ids a leaf references, sorted and unique, as the pack table lists them.
fn expected_refs(entries: &[TreeEntry]) -> Vec<BlobId> {
    let mut refs: Vec<BlobId> = entries
        .iter()
        .flat_map(|entry| match &entry.content {
            EntryContent::File { chunks, .. } => chunks.iter().map(|chunk| chunk.id).collect(),
            EntryContent::Dir { subtree } => vec![*subtree],
            _ => Vec::new(),
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

fn check_leaf(bytes: &[u8], entries: &[TreeEntry]) {
    let built = entries
        .iter()
        .cloned()
        .collect::<TreeBuilder>()
        .build(&plain_id)
        .expect("entries that decoded must serialize");
    assert_eq!(built.blobs.len(), 1, "a leaf that fit one blob was split");
    let blob = &built.blobs[0];
    assert!(
        blob.plaintext == bytes,
        "re-encoding a decoded leaf changed its bytes"
    );
    assert_eq!(built.root, plain_id(bytes));
    assert_eq!(blob.refs, expected_refs(entries));

    // Cutting a leaf anywhere and joining the parts back gives the same entries.
    if entries.len() >= 2 {
        let mid = entries.len() / 2;
        let parts = vec![entries[..mid].to_vec(), entries[mid..].to_vec()];
        assert_eq!(join_parts(parts).as_deref(), Ok(entries));
        let swapped = vec![entries[mid..].to_vec(), entries[..mid].to_vec()];
        assert!(
            join_parts(swapped).is_err(),
            "parts out of order were joined"
        );
    }
}

fn check_index(bytes: &[u8], parts: &[BlobId]) {
    assert!(
        parts.len() >= 2,
        "an index of {} parts decoded",
        parts.len()
    );
    let mut expected = TREE_MAGIC.to_vec();
    expected.extend_from_slice(&[TREE_VERSION, NODE_INDEX]);
    expected.extend_from_slice(&u32::try_from(parts.len()).unwrap().to_le_bytes());
    for id in parts {
        expected.extend_from_slice(id.as_bytes());
    }
    assert!(
        expected == bytes,
        "an index decoded from non-canonical bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    match TreeNode::decode(data) {
        Ok(TreeNode::Leaf(entries)) => check_leaf(data, &entries),
        Ok(TreeNode::Index(parts)) => check_index(data, &parts),
        Err(err) => assert!(!err.to_string().is_empty()),
    }
});
