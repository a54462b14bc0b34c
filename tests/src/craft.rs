//! Hand-made snapshots, committed with an enrolled agent's credential and
//! keys, for restores of hostile data.
//!
//! A malicious snapshot is exactly what a compromised agent of the same
//! tenant (or anyone holding its keys) could upload: correctly sealed and
//! packed, so the server accepts it, but with names and links a restore
//! must refuse. Tree leaves are encoded here byte by byte from
//! `protocol/FORMAT.md` rather than with `TreeBuilder`, because the
//! builder's `EntryName` refuses `..`, `/`, NUL and duplicates — the very
//! things under test.

use chrono::Utc;
use stowage_agent::context::AgentContext;
use stowage_protocol::blob::{BlobKind, Compression, seal_blob_random};
use stowage_protocol::crypto::{DataKey, TenantKeys, seal_data_key_random};
use stowage_protocol::ids::{BlobId, SnapshotId};
use stowage_protocol::pack::PackWriter;
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_protocol::tree::{FileChunk, NODE_INDEX, NODE_LEAF, TREE_MAGIC, TREE_VERSION};

use crate::agent::Agent;
use crate::runtime::block_on;

/// What a crafted entry is.
#[derive(Debug, Clone)]
pub enum Content {
    /// A regular file made of these chunks, `size` bytes in all.
    File {
        /// The chunks (ids and lengths), in order.
        chunks: Vec<FileChunk>,
        /// The file's size (written as given, even if the lengths disagree).
        size: u64,
    },
    /// A directory with this tree.
    Dir(BlobId),
    /// A symbolic link to these bytes.
    Symlink(Vec<u8>),
}

/// One crafted directory entry: any name bytes at all.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Raw name bytes, written as given.
    pub name: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// The content.
    pub content: Content,
}

impl Entry {
    /// A file entry (mode 0644).
    pub fn file(name: impl Into<Vec<u8>>, chunks: Vec<FileChunk>, size: u64) -> Self {
        Self {
            name: name.into(),
            mode: 0o644,
            content: Content::File { chunks, size },
        }
    }

    /// A directory entry (mode 0755).
    pub fn dir(name: impl Into<Vec<u8>>, tree: BlobId) -> Self {
        Self {
            name: name.into(),
            mode: 0o755,
            content: Content::Dir(tree),
        }
    }

    /// A symlink entry.
    pub fn symlink(name: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            mode: 0o777,
            content: Content::Symlink(target.into()),
        }
    }
}

/// Collects blobs for one crafted snapshot and commits it.
#[derive(Debug)]
pub struct Crafter {
    context: AgentContext,
    keys: TenantKeys,
    hostname: String,
    /// (kind, id, plaintext, refs), in the order made.
    blobs: Vec<(BlobKind, BlobId, Vec<u8>, Vec<BlobId>)>,
}

impl Crafter {
    /// A crafter acting as `agent` (which must hold the full tenant keys).
    pub fn new(agent: &Agent) -> Self {
        let context = agent.context();
        let keys = context
            .keys
            .tenant_keys()
            .expect("the crafting agent holds the tenant keys")
            .clone();
        Self {
            context,
            keys,
            hostname: agent.name.clone(),
            blobs: Vec::new(),
        }
    }

    /// Adds `content` (not empty) as one data chunk; returns it as a file's chunk.
    pub fn chunk(&mut self, content: &[u8]) -> FileChunk {
        let id = self.keys.id_key.chunk_id(content);
        self.add(BlobKind::Data, id, content.to_vec(), Vec::new());
        FileChunk {
            id,
            len: u32::try_from(content.len()).expect("a small chunk"),
        }
    }

    /// A file entry holding `content` (not empty) in one chunk.
    pub fn file(&mut self, name: impl Into<Vec<u8>>, content: &[u8]) -> Entry {
        let chunk = self.chunk(content);
        Entry::file(name, vec![chunk], content.len() as u64)
    }

    /// Adds a leaf tree of `entries`, in the order given (not sorted, not
    /// checked); returns its id.
    pub fn leaf(&mut self, entries: &[Entry]) -> BlobId {
        let plaintext = encode_leaf(entries);
        let refs: Vec<BlobId> = entries
            .iter()
            .flat_map(|entry| match &entry.content {
                Content::File { chunks, .. } => chunks.iter().map(|chunk| chunk.id).collect(),
                Content::Dir(tree) => vec![*tree],
                Content::Symlink(_) => Vec::new(),
            })
            .collect();
        let id = self.keys.id_key.tree_id(&plaintext);
        self.add(BlobKind::Tree, id, plaintext, refs);
        id
    }

    /// Adds an index node joining leaf `parts`; returns its id.
    pub fn index(&mut self, parts: &[BlobId]) -> BlobId {
        let mut plaintext = header(NODE_INDEX, parts.len());
        for part in parts {
            plaintext.extend_from_slice(part.as_bytes());
        }
        let id = self.keys.id_key.tree_id(&plaintext);
        self.add(BlobKind::Tree, id, plaintext, parts.to_vec());
        id
    }

    fn add(&mut self, kind: BlobKind, id: BlobId, plaintext: Vec<u8>, refs: Vec<BlobId>) {
        if !self.blobs.iter().any(|(_, seen, _, _)| *seen == id) {
            self.blobs.push((kind, id, plaintext, refs));
        }
    }

    /// Seals every blob into one pack, uploads it and commits a snapshot
    /// of `root` recorded for this agent's host; returns the snapshot id.
    pub fn commit(self, root: BlobId) -> SnapshotId {
        let data_key = DataKey::random();
        let sealed_key = seal_data_key_random(&data_key, &self.keys.public_key())
            .expect("the tenant public key seals");
        let mut pack = PackWriter::new(&sealed_key);
        for (kind, id, plaintext, refs) in &self.blobs {
            let sealed = seal_blob_random(&data_key, id, *kind, plaintext, Compression::NONE);
            pack.add(*kind, *id, &sealed, refs)
                .expect("the crafted blob fits the pack");
        }
        let (pack_id, bytes) = pack.finish();
        let client = &self.context.client;
        let now = Utc::now();
        let record = SnapshotRecord {
            root,
            parent: None,
            hostname: self.hostname.clone(),
            agent: self.context.profile.agent_id,
            plan: None,
            paths: vec![RawPath::from("/crafted")],
            tags: vec!["crafted".to_owned()],
            started_at: now,
            finished_at: now,
            summary: SnapshotSummary::default(),
            error_log: None,
        };
        block_on(async {
            let session = client.open_session(None).await.expect("a session opens");
            let ids = self.blobs.iter().map(|(_, id, _, _)| *id).collect();
            client
                .missing(&session.session_id, ids)
                .await
                .expect("the missing query works");
            client
                .put_pack(&session.session_id, &pack_id, bytes.into())
                .await
                .expect("the server accepts the crafted pack");
            client
                .commit(&session.session_id, &record)
                .await
                .expect("the server commits the crafted snapshot")
                .snapshot_id
        })
    }
}

fn header(node: u8, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&TREE_MAGIC);
    out.push(TREE_VERSION);
    out.push(node);
    out.extend_from_slice(&u32::try_from(count).expect("few entries").to_le_bytes());
    out
}

/// A leaf node's plaintext, laid out as FORMAT.md's "Tree" section says.
pub fn encode_leaf(entries: &[Entry]) -> Vec<u8> {
    let mut out = header(NODE_LEAF, entries.len());
    for entry in entries {
        put_u16_bytes(&mut out, &entry.name);
        let (kind, size) = match &entry.content {
            Content::File { size, .. } => (1u8, *size),
            Content::Dir(_) => (2, 0),
            Content::Symlink(target) => (3, target.len() as u64),
        };
        out.push(kind);
        out.extend_from_slice(&entry.mode.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // uid
        out.extend_from_slice(&0u32.to_le_bytes()); // gid
        put_u16_bytes(&mut out, b""); // user name
        put_u16_bytes(&mut out, b""); // group name
        out.extend_from_slice(&1_700_000_000i64.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // no xattrs
        match &entry.content {
            Content::File { chunks, .. } => {
                out.push(0); // not a hard link
                out.extend_from_slice(
                    &u32::try_from(chunks.len())
                        .expect("few chunks")
                        .to_le_bytes(),
                );
                for chunk in chunks {
                    out.extend_from_slice(chunk.id.as_bytes());
                    out.extend_from_slice(&chunk.len.to_le_bytes());
                }
            }
            Content::Dir(tree) => out.extend_from_slice(tree.as_bytes()),
            Content::Symlink(target) => {
                out.extend_from_slice(
                    &u32::try_from(target.len())
                        .expect("a short target")
                        .to_le_bytes(),
                );
                out.extend_from_slice(target);
            }
        }
    }
    out
}

fn put_u16_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(
        &u16::try_from(bytes.len())
            .expect("a short name")
            .to_le_bytes(),
    );
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use stowage_protocol::crypto::IdKey;
    use stowage_protocol::tree::{EntryName, Timestamp, TreeBuilder, TreeEntry, TreeNode};

    use super::*;

    #[test]
    fn a_hand_encoded_leaf_is_byte_identical_to_the_builders() {
        // Arrange: the same entries through the protocol's builder and here.
        let key = IdKey::from_bytes([7; 32]);
        let chunk = FileChunk {
            id: key.chunk_id(b"content"),
            len: 7,
        };
        let subtree = key.tree_id(b"subtree");
        let crafted = vec![
            Entry::dir("d", subtree),
            Entry::file("f", vec![chunk], 7),
            Entry::symlink("l", "target"),
        ];
        let builder: TreeBuilder = crafted
            .iter()
            .map(|entry| TreeEntry {
                name: EntryName::new(entry.name.clone()).unwrap(),
                mode: entry.mode,
                uid: 0,
                gid: 0,
                user: Vec::new(),
                group: Vec::new(),
                mtime: Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                },
                size: match &entry.content {
                    Content::File { size, .. } => *size,
                    Content::Dir(_) => 0,
                    Content::Symlink(target) => target.len() as u64,
                },
                xattrs: Vec::new(),
                content: match &entry.content {
                    Content::File { chunks, .. } => stowage_protocol::tree::EntryContent::File {
                        hardlink: None,
                        chunks: chunks.clone(),
                    },
                    Content::Dir(tree) => {
                        stowage_protocol::tree::EntryContent::Dir { subtree: *tree }
                    }
                    Content::Symlink(target) => stowage_protocol::tree::EntryContent::Symlink {
                        target: target.clone(),
                    },
                },
            })
            .collect();

        // Act
        let built = builder.build_keyed(&key).unwrap();
        let ours = encode_leaf(&crafted);

        // Assert
        assert_eq!(built.blobs.len(), 1);
        assert_eq!(built.blobs[0].plaintext, ours);
        assert!(matches!(TreeNode::decode(&ours), Ok(TreeNode::Leaf(_))));
    }
}
