//! Writes the seed corpora in `fuzz/seeds/<target>/` from the known-answer
//! vectors in `protocol/tests/vectors/`, plus a few inputs built with the
//! protocol's own writers where the vectors miss a case (an empty pack, a
//! decompression bomb, tiny chunker sizes).
//!
//! A fuzzer that starts from valid inputs reaches the deep checks in seconds;
//! one that starts from nothing spends its run on magic bytes and, for packs,
//! never gets past the table hash. Run from `fuzz/` after a format change:
//! `cargo run --example make_seeds` (it replaces the seed directories).

use std::fs;
use std::path::{Path, PathBuf};

use stowage_protocol::blob::{BlobKind, Compression, seal_blob};
use stowage_protocol::chunker::ChunkerParams;
use stowage_protocol::config::RepoConfig;
use stowage_protocol::crypto::{DataKey, seal_data_key};
use stowage_protocol::pack::PackWriter;
use stowage_protocol::tree::TreeBuilder;
use stowage_protocol_fuzz::{FUZZ_NONCE, counting_bytes, data_key, id_key, recovery_secret};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vector_text(name: &str) -> String {
    let path = manifest_dir().join("../protocol/tests/vectors").join(name);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn vector_hex(name: &str) -> Vec<u8> {
    hex::decode(vector_text(name).trim()).expect("hex vector")
}

/// A string field of a JSON vector.
fn vector_field(name: &str, field: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(&vector_text(name)).expect("JSON vector");
    json[field].as_str().expect("string field").to_owned()
}

/// The seed directories written so far, each emptied on first use.
struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn write(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("create seed directory");
        fs::write(dir.join(name), bytes).expect("write seed");
    }

    fn reset(root: &Path) -> Self {
        if root.exists() {
            fs::remove_dir_all(root).expect("remove old seeds");
        }
        Self {
            root: root.to_path_buf(),
        }
    }
}

fn prefixed(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// The plaintext behind `blob_data_zstd.hex` (see `protocol/tests/kat_blob.rs`).
fn chunk_plaintext() -> Vec<u8> {
    b"stowage known-answer chunk. ".repeat(40)
}

fn blob_open(seeds: &Seeds) {
    let chunk = chunk_plaintext();
    let chunk_id = id_key().chunk_id(&chunk);
    let tree_id = id_key().tree_id(b"STRE tree bytes");
    let leaf = hex::decode(vector_field("tree_v2.json", "leaf")).expect("hex leaf");

    // Mode 0: id || sealed, straight from the vectors.
    let raw = |id: &[u8; 32], sealed: &[u8]| prefixed(&[0], &prefixed(id, sealed));
    seeds.write(
        "blob_open",
        "raw-data-vector",
        &raw(chunk_id.as_bytes(), &vector_hex("blob_data_zstd.hex")),
    );
    seeds.write(
        "blob_open",
        "raw-tree-vector",
        &raw(tree_id.as_bytes(), &vector_hex("blob_tree_plain.hex")),
    );

    // Mode 1: kind || flags || body, authenticated around fuzzer bytes.
    let zstd_chunk = zstd::bulk::compress(&chunk, 3).expect("compress");
    seeds.write(
        "blob_open",
        "forged-zstd-chunk",
        &prefixed(&[1, 1, 1], &zstd_chunk),
    );
    seeds.write(
        "blob_open",
        "forged-plain-leaf",
        &prefixed(&[1, 2, 0], &leaf),
    );
    let bomb = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).expect("compress");
    seeds.write(
        "blob_open",
        "forged-bomb-1mib",
        &prefixed(&[1, 1, 1], &bomb),
    );
    let mut no_size = Vec::new();
    let mut encoder = zstd::stream::write::Encoder::new(&mut no_size, 3).expect("encoder");
    encoder.include_contentsize(false).expect("set parameter");
    std::io::Write::write_all(&mut encoder, &vec![7u8; 200 * 1024]).expect("compress");
    encoder.finish().expect("finish frame");
    seeds.write(
        "blob_open",
        "forged-bomb-no-content-size",
        &prefixed(&[1, 1, 1], &no_size),
    );
    let two_frames = [
        zstd_chunk.as_slice(),
        &zstd::bulk::compress(b"second frame", 1).expect("compress"),
    ]
    .concat();
    seeds.write(
        "blob_open",
        "forged-two-frames",
        &prefixed(&[1, 1, 1], &two_frames),
    );

    // Mode 2: ctl || pos[2] || xor || plaintext, sealed by the harness.
    seeds.write(
        "blob_open",
        "sealed-zstd-chunk",
        &prefixed(&[2, 1, 40, 0, 0x80], &chunk),
    );
    seeds.write(
        "blob_open",
        "sealed-plain-leaf",
        &prefixed(&[2, 2, 4, 0, 1], &leaf),
    );
    seeds.write("blob_open", "sealed-empty", &[2, 3, 0, 0, 1]);
}

fn pack_parse(seeds: &Seeds) {
    seeds.write(
        "pack_parse",
        "vector-pack",
        &hex::decode(vector_field("pack_v1.json", "pack")).expect("hex pack"),
    );

    let sealed_key = seal_data_key(
        &data_key(),
        &recovery_secret().public_key(),
        counting_bytes(0xc0),
    )
    .expect("seal data key");
    seeds.write(
        "pack_parse",
        "empty-pack",
        &PackWriter::new(&sealed_key).finish().1,
    );

    // A data chunk and a tree referencing it and a subtree, sealed for real.
    let key: DataKey = data_key();
    let chunk = chunk_plaintext();
    let chunk_id = id_key().chunk_id(&chunk);
    let leaf = hex::decode(vector_field("tree_v2.json", "leaf")).expect("hex leaf");
    let leaf_id = id_key().tree_id(&leaf);
    let mut writer = PackWriter::new(&sealed_key);
    let sealed_chunk = seal_blob(
        &key,
        &chunk_id,
        BlobKind::Data,
        &chunk,
        Compression::DEFAULT,
        FUZZ_NONCE,
    );
    writer
        .add(BlobKind::Data, chunk_id, &sealed_chunk, &[])
        .expect("add chunk");
    let sealed_leaf = seal_blob(
        &key,
        &leaf_id,
        BlobKind::Tree,
        &leaf,
        Compression::NONE,
        FUZZ_NONCE,
    );
    let refs = [chunk_id, id_key().tree_id(b"subtree")];
    writer
        .add(BlobKind::Tree, leaf_id, &sealed_leaf, &refs)
        .expect("add tree");
    seeds.write("pack_parse", "chunk-and-tree", &writer.finish().1);
}

fn tree_decode(seeds: &Seeds) {
    for field in ["leaf", "index"] {
        let bytes = hex::decode(vector_field("tree_v2.json", field)).expect("hex tree");
        seeds.write("tree_decode", &format!("vector-{field}"), &bytes);
    }
    let empty = TreeBuilder::new()
        .build_keyed(&id_key())
        .expect("empty directory");
    seeds.write("tree_decode", "empty-leaf", &empty.blobs[0].plaintext);
}

fn wrapped_keys(seeds: &Seeds) {
    let wrapped = vector_hex("wrapped_tenant_keys.hex");
    seeds.write("wrapped_keys", "vector-wrapped-keys", &wrapped);
    seeds.write(
        "wrapped_keys",
        "vector-wrapped-keys-hex",
        hex::encode(&wrapped).as_bytes(),
    );
    seeds.write(
        "wrapped_keys",
        "vector-sealed-data-key",
        &vector_hex("sealed_data_key.hex"),
    );
}

fn json_seeds(seeds: &Seeds) {
    let snapshot = vector_field("snapshot_v1.json", "canonical_json");
    seeds.write("snapshot_json", "vector-canonical", snapshot.as_bytes());
    let pretty: serde_json::Value = serde_json::from_str(&snapshot).expect("snapshot JSON");
    let pretty = serde_json::to_string_pretty(&pretty).expect("pretty JSON");
    seeds.write("snapshot_json", "vector-pretty", pretty.as_bytes());

    let config = vector_text("repo_config.json");
    seeds.write(
        "repo_config_json",
        "vector-config",
        config.trim().as_bytes(),
    );
    let tiny = RepoConfig {
        chunker: ChunkerParams {
            min_size: 64,
            avg_size: 256,
            max_size: 1024,
            normalization: 3,
        },
        chunker_seeded: true,
        pack_target_size: 1 << 20,
        zstd_level: -7,
    };
    seeds.write("repo_config_json", "tiny-chunks", tiny.to_json().as_bytes());

    let wrapped = vector_text("wrapped_tenant_keys.hex");
    let blob = "00".repeat(32);
    let pack = "11".repeat(32);
    let short = "22".repeat(16);
    let bodies: [(u8, String); 15] = [
        (
            0,
            format!(
                r#"{{"code":"missing_blobs","message":"blob {blob} is missing","retryable":false,"missing_blobs":["{blob}"]}}"#
            ),
        ),
        (
            1,
            r#"{"token":"t0k3n","agent_name":"db1 agent","hostname":"db1"}"#.to_owned(),
        ),
        (
            2,
            format!(
                r#"{{"agent_id":"{short}","tenant_id":"{short}","credential":"secret","tenant_keys_exist":true}}"#
            ),
        ),
        (
            3,
            serde_json::json!({"wrapped_keys": wrapped.trim(), "repo_config": config.trim()})
                .to_string(),
        ),
        (4, format!(r#"{{"plan":"{short}"}}"#)),
        (
            5,
            format!(r#"{{"session_id":"{short}","lease_expires_at":"2026-11-26T01:00:00.123Z"}}"#),
        ),
        (6, format!(r#"{{"ids":["{blob}","{pack}"]}}"#)),
        (7, format!(r#"{{"missing":["{blob}"]}}"#)),
        (
            8,
            format!(r#"{{"pack_id":"{pack}","blobs_indexed":3,"already_present":false}}"#),
        ),
        (9, format!(r#"{{"record":{snapshot}}}"#)),
        (
            10,
            format!(r#"{{"snapshot_id":"{pack}","already_committed":true}}"#),
        ),
        (
            11,
            format!(
                r#"{{"id":"{pack}","committed_at":"2026-11-26T01:04:00Z","record":{snapshot}}}"#
            ),
        ),
        (
            12,
            format!(
                r#"{{"snapshots":[{{"id":"{pack}","committed_at":"2026-11-26T01:04:00Z","record":{snapshot}}}],"next_before":null}}"#
            ),
        ),
        (13, format!(r#"{{"ids":["{blob}"]}}"#)),
        (
            14,
            format!(
                r#"{{"found":[{{"id":"{blob}","pack_id":"{pack}","offset":88,"length":45}}],"missing":[]}}"#
            ),
        ),
    ];
    for (selector, body) in bodies {
        seeds.write(
            "api_json",
            &format!("body-{selector:02}"),
            &prefixed(&[selector], body.as_bytes()),
        );
    }
    seeds.write("api_json", "id-blob", &prefixed(&[0], blob.as_bytes()));
    seeds.write("api_json", "id-agent", &prefixed(&[0], short.as_bytes()));
}

fn main() {
    let seeds = Seeds::reset(&manifest_dir().join("seeds"));
    blob_open(&seeds);
    pack_parse(&seeds);
    tree_decode(&seeds);
    wrapped_keys(&seeds);
    json_seeds(&seeds);
    println!("seeds written to {}", seeds.root.display());
}
