//! Property tests of the whole chain an agent writes and a restore reads:
//! data → chunks → ids → sealed blobs → pack → parse → open → reassembled data,
//! with the directory tree sealed into the same pack; plus the promise that a
//! damaged pack is always detected and a hostile one never makes a reader
//! allocate from its claimed counts.

use std::collections::BTreeMap;

use proptest::prelude::*;
use stowage_protocol::blob::{BlobKind, Compression, open_blob, seal_blob, verify_blob_id};
use stowage_protocol::chunker::{Chunker, ChunkerParams};
use stowage_protocol::crypto::{DataKey, IdKey, RecoverySecret, open_data_key, seal_data_key};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PackError, PackReader, PackWriter, verify_pack_id};
use stowage_protocol::tree::{
    EntryContent, EntryName, FileChunk, TREE_MAGIC, TREE_VERSION, Timestamp, TreeBuilder,
    TreeEntry, TreeError, TreeNode, Xattr,
};

/// Small chunks so that a few KiB of input make many of them.
const PARAMS: ChunkerParams = ChunkerParams {
    min_size: 64,
    avg_size: 256,
    max_size: 1024,
    normalization: 1,
};
/// Largest plaintext a test blob may open to.
const MAX_PLAINTEXT: usize = 1 << 20;

struct Tenant {
    id_key: IdKey,
    secret: RecoverySecret,
}

fn tenant() -> Tenant {
    Tenant {
        id_key: IdKey::from_bytes([0x17; 32]),
        secret: RecoverySecret::from_bytes([0x29; 32]),
    }
}

/// What the writer side produced.
struct Written {
    pack_id: PackId,
    pack: Vec<u8>,
    /// The file's chunks in order (repeats kept).
    chunks: Vec<FileChunk>,
    /// The directory's root tree id.
    root: BlobId,
}

/// Chunks `data` into a file entry named "data", adds `others`, and seals it all into one pack.
fn write(
    tenant: &Tenant,
    data: &[u8],
    others: Vec<TreeEntry>,
    data_key: [u8; 32],
    ephemeral: [u8; 32],
) -> Written {
    let data_key = DataKey::from_bytes(data_key);
    let sealed_key = seal_data_key(&data_key, &tenant.secret.public_key(), ephemeral).unwrap();
    let mut writer = PackWriter::new(&sealed_key);
    let mut nonce = 0u64;
    let mut next_nonce = || {
        nonce += 1;
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&nonce.to_le_bytes());
        bytes
    };
    let chunker = Chunker::for_tenant(PARAMS, &tenant.id_key).unwrap();
    let mut chunks = Vec::new();
    for span in chunker.chunks(data) {
        let plaintext = &data[span.range()];
        let id = tenant.id_key.chunk_id(plaintext);
        let len = u32::try_from(plaintext.len()).unwrap();
        chunks.push(FileChunk { id, len });
        if !writer.contains(&id) {
            let sealed = seal_blob(
                &data_key,
                &id,
                BlobKind::Data,
                plaintext,
                Compression::DEFAULT,
                next_nonce(),
            );
            writer.add(BlobKind::Data, id, &sealed, &[]).unwrap();
        }
    }
    let mut builder = TreeBuilder::new();
    builder.push(file_entry(chunks.clone(), data.len()));
    builder.extend(others);
    let tree = builder.build_keyed(&tenant.id_key).unwrap();
    for blob in &tree.blobs {
        let sealed = seal_blob(
            &data_key,
            &blob.id,
            BlobKind::Tree,
            &blob.plaintext,
            Compression::DEFAULT,
            next_nonce(),
        );
        writer
            .add(BlobKind::Tree, blob.id, &sealed, &blob.refs)
            .unwrap();
    }
    let (pack_id, pack) = writer.finish();
    Written {
        pack_id,
        pack,
        chunks,
        root: tree.root,
    }
}

fn file_entry(chunks: Vec<FileChunk>, len: usize) -> TreeEntry {
    TreeEntry {
        name: EntryName::try_from("data").unwrap(),
        mode: 0o600,
        uid: 1,
        gid: 2,
        user: Vec::new(),
        group: Vec::new(),
        mtime: Timestamp {
            seconds: 0,
            nanos: 0,
        },
        size: len as u64,
        xattrs: Vec::new(),
        content: EntryContent::File {
            hardlink: None,
            chunks,
        },
    }
}

/// Everything a restore reads back from one pack.
struct Restored {
    data: Vec<u8>,
    entries: Vec<TreeEntry>,
}

/// Parses the pack and opens every blob the way a restore does; any failed check is an `Err`.
fn restore(
    tenant: &Tenant,
    pack: &[u8],
    chunks: &[FileChunk],
    root: &BlobId,
) -> Result<Restored, String> {
    let reader = PackReader::parse(pack).map_err(|e| e.to_string())?;
    let data_key = open_data_key(reader.sealed_key(), &tenant.secret).map_err(|e| e.to_string())?;
    let open = |id: &BlobId, kind: BlobKind| -> Result<Vec<u8>, String> {
        let entry = reader
            .find(id)
            .ok_or(format!("blob {id} is not in the pack"))?;
        let sealed = reader.blob_bytes(entry).ok_or("blob range outside pack")?;
        let plaintext =
            open_blob(&data_key, id, kind, sealed, MAX_PLAINTEXT).map_err(|e| e.to_string())?;
        verify_blob_id(&tenant.id_key, id, kind, &plaintext).map_err(|e| e.to_string())?;
        Ok(plaintext)
    };
    let mut data = Vec::new();
    for chunk in chunks {
        let plaintext = open(&chunk.id, BlobKind::Data)?;
        if plaintext.len() != chunk.len as usize {
            return Err(format!(
                "chunk {} opened to {} bytes, the tree says {}",
                chunk.id,
                plaintext.len(),
                chunk.len
            ));
        }
        data.extend_from_slice(&plaintext);
    }
    // Every other blob in the pack must open too: a restore may need any of them.
    for entry in reader.entries() {
        open(&entry.id, entry.kind)?;
    }
    let entries = match TreeNode::decode(&open(root, BlobKind::Tree)?).map_err(|e| e.to_string())? {
        TreeNode::Leaf(entries) => entries,
        TreeNode::Index(_) => return Err("unexpected index for a small directory".to_owned()),
    };
    Ok(Restored { data, entries })
}

fn entry_strategy() -> impl Strategy<Value = TreeEntry> {
    let content = prop_oneof![
        Just(EntryContent::Fifo),
        Just(EntryContent::Socket),
        any::<u64>().prop_map(|rdev| EntryContent::CharDevice { rdev }),
        any::<u64>().prop_map(|rdev| EntryContent::BlockDevice { rdev }),
        any::<[u8; 32]>().prop_map(|b| EntryContent::Dir {
            subtree: BlobId::from_bytes(b)
        }),
        prop::collection::vec(1u8..=255, 1..40).prop_map(|target| EntryContent::Symlink { target }),
        chunks_strategy().prop_map(|chunks| EntryContent::File {
            hardlink: None,
            chunks
        }),
    ];
    let xattrs = prop::collection::btree_map(
        prop::collection::vec(any::<u8>(), 1..8),
        prop::collection::vec(any::<u8>(), 0..16),
        0..3,
    );
    (
        "[a-zA-Z0-9_-]{1,10}",
        0u32..=0o7777,
        any::<(u32, u32, i64, u64)>(),
        0u32..1_000_000_000,
        xattrs,
        content,
    )
        .prop_map(
            |(name, mode, (uid, gid, seconds, size), nanos, xattrs, content)| TreeEntry {
                name: EntryName::try_from(format!("x{name}").as_str()).unwrap(),
                mode,
                uid,
                gid,
                user: b"u".to_vec(),
                group: Vec::new(),
                mtime: Timestamp { seconds, nanos },
                // A file's size is the sum of its chunk lengths; other kinds' is free.
                size: match &content {
                    EntryContent::File { chunks, .. } => chunks_len(chunks),
                    _ => size,
                },
                xattrs: xattrs
                    .into_iter()
                    .map(|(name, value)| Xattr { name, value })
                    .collect(),
                content,
            },
        )
}

/// Up to six chunks of any non-zero length, repeats possible.
fn chunks_strategy() -> impl Strategy<Value = Vec<FileChunk>> {
    prop::collection::vec(
        (0u8..4, 1u32..=u32::MAX).prop_map(|(id, len)| FileChunk {
            id: BlobId::from_bytes([id; 32]),
            len,
        }),
        0..6,
    )
}

fn chunks_len(chunks: &[FileChunk]) -> u64 {
    chunks.iter().map(|chunk| u64::from(chunk.len)).sum()
}

/// Unique names, as a directory has them.
fn entries_strategy() -> impl Strategy<Value = Vec<TreeEntry>> {
    prop::collection::vec(entry_strategy(), 0..12).prop_map(|entries| {
        let unique: BTreeMap<_, _> = entries.into_iter().map(|e| (e.name.clone(), e)).collect();
        unique.into_values().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn data_and_tree_survive_the_whole_chain(
        data in prop::collection::vec(any::<u8>(), 0..12_000),
        repeat in 0usize..3,
        others in entries_strategy(),
        data_key in any::<[u8; 32]>(),
        ephemeral in any::<[u8; 32]>(),
    ) {
        // Arrange: repeating the input makes duplicate chunks, which a pack holds once.
        let tenant = tenant();
        let input = data.repeat(repeat + 1);

        // Act
        let written = write(&tenant, &input, others.clone(), data_key, ephemeral);
        let restored = restore(&tenant, &written.pack, &written.chunks, &written.root).unwrap();

        // Assert
        verify_pack_id(&written.pack, &written.pack_id).unwrap();
        prop_assert_eq!(restored.data, input.clone());
        let mut expected = others;
        expected.push(file_entry(written.chunks.clone(), input.len()));
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        prop_assert_eq!(restored.entries, expected);
    }

    #[test]
    fn flipping_any_single_bit_of_a_pack_is_detected_without_the_pack_id(
        data in prop::collection::vec(any::<u8>(), 1..3_000),
        bit in any::<prop::sample::Index>(),
    ) {
        // Arrange
        let tenant = tenant();
        let written = write(&tenant, &data, Vec::new(), [5; 32], [6; 32]);
        let mut damaged = written.pack.clone();
        let bit = bit.index(damaged.len() * 8);

        // Act
        damaged[bit / 8] ^= 1 << (bit % 8);

        // Assert: the pack id catches it, and so do the format's own checks.
        prop_assert!(verify_pack_id(&damaged, &written.pack_id).is_err());
        prop_assert!(restore(&tenant, &damaged, &written.chunks, &written.root).is_err(), "bit {} went unnoticed", bit);
    }

    #[test]
    fn a_file_entry_builds_only_when_its_size_is_the_sum_of_its_chunk_lengths(
        chunks in chunks_strategy(),
        size in prop_oneof![Just(None), any::<u64>().prop_map(Some)],
    ) {
        // Arrange
        let sum = chunks_len(&chunks);
        let mut entry = file_entry(chunks, 0);
        entry.size = size.unwrap_or(sum);

        // Act
        let built = std::iter::once(entry).collect::<TreeBuilder>().build_keyed(&tenant().id_key);

        // Assert
        if size.is_none_or(|size| size == sum) {
            let plaintext = &built.unwrap().blobs[0].plaintext;
            prop_assert!(TreeNode::decode(plaintext).is_ok());
        } else {
            let err = built.unwrap_err();
            prop_assert!(matches!(err, TreeError::InvalidEntry { .. }), "{}", err);
            prop_assert!(err.to_string().contains("chunk lengths add up to"), "{}", err);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_pack_or_tree_decoders(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = PackReader::parse(&bytes);
        let _ = TreeNode::decode(&bytes);
    }

    #[test]
    fn random_tables_in_a_well_framed_pack_never_panic(table in prop::collection::vec(any::<u8>(), 4..400), blob_area in 0usize..300) {
        let pack = frame(blob_area, &table);
        let _ = PackReader::parse(&pack);
    }
}

/// A pack with a valid header and trailer around `table`, after `blob_area` bytes of blobs.
fn frame(blob_area: usize, table: &[u8]) -> Vec<u8> {
    let mut pack = b"STWP\x01\0\0\0".to_vec();
    pack.resize(88 + blob_area, 0x5b);
    let table_offset = pack.len() as u64;
    pack.extend_from_slice(table);
    pack.extend_from_slice(&table_offset.to_le_bytes());
    pack.extend_from_slice(&u32::try_from(table.len()).unwrap().to_le_bytes());
    pack.extend_from_slice(&blake3::hash(table).as_bytes()[..8]);
    pack.extend_from_slice(b"STWT");
    pack
}

#[test]
fn hostile_counts_fail_fast_in_a_tiny_pack() {
    // Arrange: ~130-byte packs claiming 2^32 - 1 entries, or a tree with 2^32 - 1 refs.
    let entries = frame(0, &u32::MAX.to_le_bytes());
    let mut refs_table = 1u32.to_le_bytes().to_vec();
    refs_table.push(2);
    refs_table.extend_from_slice(&[9; 32]);
    refs_table.extend_from_slice(&88u32.to_le_bytes());
    refs_table.extend_from_slice(&45u32.to_le_bytes());
    refs_table.extend_from_slice(&u32::MAX.to_le_bytes());
    let refs = frame(45, &refs_table);
    let mut tree = TREE_MAGIC.to_vec();
    tree.extend_from_slice(&[TREE_VERSION, 1]);
    tree.extend_from_slice(&u32::MAX.to_le_bytes());
    tree.extend_from_slice(&[0; 90]);

    // Act
    let started = std::time::Instant::now();
    let entries_err = PackReader::parse(&entries).unwrap_err();
    let refs_err = PackReader::parse(&refs).unwrap_err();
    let tree_err = TreeNode::decode(&tree).unwrap_err();

    // Assert
    assert!(
        matches!(
            entries_err,
            PackError::CountTooLarge {
                count: 4_294_967_295,
                ..
            }
        ),
        "{entries_err}"
    );
    assert!(
        matches!(
            refs_err,
            PackError::CountTooLarge {
                what: "tree references",
                ..
            }
        ),
        "{refs_err}"
    );
    assert!(tree_err.to_string().contains("4294967295"), "{tree_err}");
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
}
