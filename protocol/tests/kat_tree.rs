//! Known-answer vectors for the version-2 tree layout (FORMAT.md § Tree):
//! a leaf with one entry of every kind and files of several chunks of
//! different lengths, and the index of a split directory.
//!
//! The version-1 vectors (`tree_v1.json`, written by pre-release builds,
//! without chunk lengths) stay as known input that this build must refuse
//! with an error telling the user to make a new backup.

mod json_vectors;

use serde_json::json;
use stowage_protocol::crypto::IdKey;
use stowage_protocol::error::ErrorKind;
use stowage_protocol::ids::BlobId;
use stowage_protocol::tree::{
    EntryContent, EntryName, FileChunk, HardlinkGroup, Timestamp, TreeBuilder, TreeEntry,
    TreeError, TreeNode, Xattr, join_parts,
};

const FILE: &str = "tree_v2.json";
/// Pre-release bytes, never rewritten: the same leaf and index in version 1.
const V1_FILE: &str = "tree_v1.json";

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

fn chunk(byte: u8, len: u32) -> FileChunk {
    FileChunk {
        id: BlobId::from_bytes([byte; 32]),
        len,
    }
}

/// A file entry of `chunks`, its size the sum of their lengths.
fn file_entry(name: &[u8], mode: u32, chunks: Vec<FileChunk>) -> TreeEntry {
    let size = chunks.iter().map(|chunk| u64::from(chunk.len)).sum();
    let hardlink = None;
    TreeEntry {
        size,
        ..entry(name, mode, EntryContent::File { hardlink, chunks })
    }
}

/// One entry of every kind, pushed out of order, with unsorted xattrs; and
/// a file of chunks of 1 byte, 64 KiB and 4 GiB − 1 (the largest length),
/// one of them repeated.
fn leaf_entries() -> Vec<TreeEntry> {
    let mut file = file_entry(
        b"a-file",
        0o644,
        vec![chunk(1, 1_048_576), chunk(2, 951_424)],
    );
    assert_eq!(file.size, 2_000_000);
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
    let pieces = file_entry(
        b"i-pieces",
        0o640,
        vec![
            chunk(4, 1),
            chunk(5, 65_536),
            chunk(4, 1),
            chunk(6, u32::MAX),
        ],
    );
    vec![
        linked,
        pieces,
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
fn serialized_trees_match_the_version_2_vectors() {
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

#[test]
fn the_vector_files_place_every_chunk_by_the_lengths_before_it() {
    // Arrange
    let vectors = json_vectors::load(FILE);
    let TreeNode::Leaf(entries) =
        TreeNode::decode(&json_vectors::hex_field(&vectors, "leaf")).unwrap()
    else {
        panic!("vector leaf is not a leaf");
    };
    let pieces = entries
        .iter()
        .find(|e| e.name.as_bytes() == b"i-pieces")
        .unwrap();
    let EntryContent::File { chunks, .. } = &pieces.content else {
        panic!("i-pieces is not a file");
    };

    // Act: what a restore computes before opening any chunk.
    let offsets: Vec<u64> = chunks
        .iter()
        .scan(0u64, |offset, chunk| {
            let start = *offset;
            *offset += u64::from(chunk.len);
            Some(start)
        })
        .collect();

    // Assert
    assert_eq!(offsets, [0, 1, 65_537, 65_538]);
    assert_eq!(pieces.size, 65_538 + u64::from(u32::MAX));
}

#[test]
fn version_1_vectors_are_refused_with_an_error_asking_for_a_new_backup() {
    // Arrange
    let vectors = json_vectors::load(V1_FILE);

    for field in ["leaf", "index"] {
        // Act
        let bytes = json_vectors::hex_field(&vectors, field);
        let err = TreeNode::decode(&bytes).unwrap_err();

        // Assert
        assert_eq!(bytes[4], 1, "{V1_FILE} {field} is version 1");
        assert_eq!(err, TreeError::PreReleaseVersion1, "{field}");
        assert_eq!(
            err.to_string(),
            "tree version 1 (written by pre-release builds, without chunk lengths) is not read \
             by this build; make a new backup to replace the snapshots that use it"
        );
        let kind = stowage_protocol::error::Error::from(err).kind();
        assert_eq!(kind, ErrorKind::Unsupported);
    }
    // The tree id function did not change with the layout.
    let leaf = json_vectors::hex_field(&vectors, "leaf");
    assert_eq!(id_key().tree_id(&leaf).to_hex(), vectors["leaf_id"]);
}

#[test]
fn a_future_version_names_the_version_this_build_reads() {
    let mut bytes = json_vectors::hex_field(&json_vectors::load(FILE), "leaf");
    bytes[4] = 3;
    let err = TreeNode::decode(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tree version 3 is not supported (this build reads version 2)"
    );
}
