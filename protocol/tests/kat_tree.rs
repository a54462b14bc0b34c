//! Known-answer vectors for the version-1 tree layout (FORMAT.md § Tree):
//! a leaf with one entry of every kind, and the index of a split directory.

mod json_vectors;

use serde_json::json;
use stowage_protocol::crypto::IdKey;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{
    EntryContent, EntryName, HardlinkGroup, Timestamp, TreeBuilder, TreeEntry, TreeNode, Xattr,
    join_parts,
};

const FILE: &str = "tree_v1.json";

fn id_key() -> IdKey {
    IdKey::from_bytes([0x42; 32])
}

fn entry(name: &[u8], mode: u32, content: EntryContent) -> TreeEntry {
    TreeEntry {
        name: EntryName::new(name).unwrap(),
        mode,
        uid: 1000,
        gid: 100,
        user: b"alice".to_vec(),
        group: b"users".to_vec(),
        mtime: Timestamp {
            seconds: 1_790_000_000,
            nanos: 123_456_789,
        },
        size: 0,
        xattrs: Vec::new(),
        content,
    }
}

/// One entry of every kind, pushed out of order, with unsorted xattrs.
fn leaf_entries() -> Vec<TreeEntry> {
    let mut file = entry(
        b"a-file",
        0o644,
        EntryContent::File {
            hardlink: None,
            chunks: vec![BlobId::from_bytes([1; 32]), BlobId::from_bytes([2; 32])],
        },
    );
    file.size = 2_000_000;
    file.xattrs = vec![
        Xattr {
            name: b"user.b".to_vec(),
            value: b"2".to_vec(),
        },
        Xattr {
            name: b"user.a".to_vec(),
            value: b"1".to_vec(),
        },
    ];
    let mut linked = entry(
        b"h-caf\xe9",
        0o4755,
        EntryContent::File {
            hardlink: Some(HardlinkGroup {
                device: 66_306,
                inode: 1_234_567,
            }),
            chunks: Vec::new(),
        },
    );
    linked.mtime = Timestamp {
        seconds: -1,
        nanos: 999_999_999,
    };
    linked.user = Vec::new();
    linked.group = Vec::new();
    let mut block = entry(b"d-blk", 0o660, EntryContent::BlockDevice { rdev: 0x0801 });
    block.uid = 0;
    block.gid = 6;
    vec![
        linked,
        entry(b"g-sock", 0o755, EntryContent::Socket),
        entry(
            b"b-dir",
            0o755,
            EntryContent::Dir {
                subtree: BlobId::from_bytes([3; 32]),
            },
        ),
        entry(
            b"c-link",
            0o777,
            EntryContent::Symlink {
                target: b"a-file".to_vec(),
            },
        ),
        block,
        entry(b"e-chr", 0o620, EntryContent::CharDevice { rdev: 0x0103 }),
        entry(b"f-fifo", 0o600, EntryContent::Fifo),
        file,
    ]
}

/// 4200 fifos "e00000".."e04199": more than one leaf holds, so the directory is split.
fn index_entries() -> Vec<TreeEntry> {
    (0..4200)
        .map(|i| entry(format!("e{i:05}").as_bytes(), 0o644, EntryContent::Fifo))
        .collect()
}

fn build(entries: Vec<TreeEntry>) -> stowage_protocol::tree::BuiltTree {
    entries
        .into_iter()
        .collect::<TreeBuilder>()
        .build_keyed(&id_key())
        .unwrap()
}

fn sorted(mut entries: Vec<TreeEntry>) -> Vec<TreeEntry> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in &mut entries {
        entry.xattrs.sort_by(|a, b| a.name.cmp(&b.name));
    }
    entries
}

#[test]
fn serialized_trees_match_the_version_1_vectors() {
    // Arrange
    let leaf = build(leaf_entries());
    let split = build(index_entries());

    // Act
    let index = split.blobs.last().unwrap();
    let actual = json!({
        "id_key": hex::encode([0x42; 32]),
        "leaf": hex::encode(&leaf.blobs[0].plaintext),
        "leaf_id": leaf.root.to_hex(),
        "leaf_refs": leaf.blobs[0].refs.iter().map(BlobId::to_hex).collect::<Vec<_>>(),
        "index": hex::encode(&index.plaintext),
        "index_id": split.root.to_hex(),
        "index_leaf_entry_counts": split.blobs[..split.blobs.len() - 1].iter()
            .map(|b| u32::from_le_bytes(b.plaintext[6..10].try_into().unwrap()))
            .collect::<Vec<_>>(),
    });

    // Assert
    assert_eq!(leaf.blobs.len(), 1);
    json_vectors::check(FILE, &actual);
}

#[test]
fn the_vector_leaf_decodes_to_its_entries() {
    let vectors = json_vectors::load(FILE);
    let bytes = json_vectors::hex_field(&vectors, "leaf");
    assert_eq!(
        TreeNode::decode(&bytes).unwrap(),
        TreeNode::Leaf(sorted(leaf_entries()))
    );
    assert_eq!(id_key().tree_id(&bytes).to_hex(), vectors["leaf_id"]);
}

#[test]
fn the_vector_index_lists_the_leaves_of_the_split_directory() {
    // Arrange
    let vectors = json_vectors::load(FILE);
    let bytes = json_vectors::hex_field(&vectors, "index");
    let split = build(index_entries());

    // Act
    let TreeNode::Index(parts) = TreeNode::decode(&bytes).unwrap() else {
        panic!("vector index is not an index node");
    };

    // Assert
    let leaves: Vec<_> = parts
        .iter()
        .map(|id| {
            let blob = split
                .blobs
                .iter()
                .find(|b| b.id == *id)
                .expect("index part was built");
            assert_eq!(id_key().tree_id(&blob.plaintext), *id);
            match TreeNode::decode(&blob.plaintext).unwrap() {
                TreeNode::Leaf(entries) => entries,
                TreeNode::Index(_) => panic!("nested index"),
            }
        })
        .collect();
    assert_eq!(join_parts(leaves).unwrap(), index_entries());
}
