//! The reader against packs built with the protocol crate and served by a
//! minimal HTTP/1.1 stand-in for the server's locate and ranged pack reads
//! (the real server is exercised by the end-to-end tests). The stand-in
//! ([`Store`], [`pack`], [`serve`], [`reader`]) also serves other modules'
//! tests that need real chunks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stowage_protocol::api::{BlobLocation, LocateBlobsRequest, LocateBlobsResponse};
use stowage_protocol::blob::{BlobKind, Compression, seal_blob_random};
use stowage_protocol::crypto::{DataKey, TenantKeys, seal_data_key_random};
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::pack::{PackReader, PackWriter};
use stowage_protocol::tree::{EntryContent, EntryName, Timestamp, TreeBuilder, TreeEntry};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::{ReadError, RepoReader};
use crate::api::{RetryPolicy, ServerClient};
use crate::throttle::Throttle;

#[derive(Default)]
pub(crate) struct Store {
    pub(crate) packs: HashMap<PackId, Vec<u8>>,
    pub(crate) index: HashMap<BlobId, BlobLocation>,
}

/// Serves `store`; returns the base URL and a counter of range requests.
pub(crate) async fn serve(store: Store) -> (url::Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let store = Arc::new(store);
    let ranges = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ranges);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (store, counter) = (Arc::clone(&store), Arc::clone(&counter));
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                while let Some((status, body)) = answer(&mut socket, &store, &counter).await {
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/octet-stream\r\n\r\n",
                        body.len()
                    );
                    let stream = socket.get_mut();
                    stream.write_all(head.as_bytes()).await.unwrap();
                    stream.write_all(&body).await.unwrap();
                }
            });
        }
    });
    (url, ranges)
}

/// Reads one request and computes its answer; `None` at the end of the connection.
async fn answer(
    socket: &mut BufReader<tokio::net::TcpStream>,
    store: &Store,
    ranges: &AtomicUsize,
) -> Option<(&'static str, Vec<u8>)> {
    let mut request_line = String::new();
    if socket.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let (mut length, mut range) = (0usize, None);
    loop {
        let mut line = String::new();
        socket.read_line(&mut line).await.ok()?;
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("content-length: ") {
            length = value.parse().unwrap();
        }
        if let Some(value) = line.strip_prefix("range: bytes=") {
            let (start, end) = value.split_once('-').unwrap();
            range = Some(start.parse::<usize>().unwrap()..end.parse::<usize>().unwrap() + 1);
        }
    }
    let mut body = vec![0; length];
    socket.read_exact(&mut body).await.ok()?;
    let path = request_line.split(' ').nth(1).unwrap();
    if path == "/api/v1/blobs/locate" {
        let request: LocateBlobsRequest = serde_json::from_slice(&body).unwrap();
        let (found, unknown): (Vec<_>, Vec<_>) = request
            .ids
            .iter()
            .partition(|id| store.index.contains_key(id));
        let response = LocateBlobsResponse {
            found: found.into_iter().map(|id| store.index[id]).collect(),
            unknown: unknown.into_iter().copied().collect(),
        };
        return Some(("200 OK", serde_json::to_vec(&response).unwrap()));
    }
    let pack: PackId = path
        .strip_prefix("/api/v1/packs/")
        .unwrap()
        .parse()
        .unwrap();
    ranges.fetch_add(1, Ordering::SeqCst);
    match store.packs.get(&pack) {
        Some(bytes) => Some(("206 Partial Content", bytes[range.unwrap()].to_vec())),
        None => Some((
            "404 Not Found",
            br#"{"code":"not_found","message":"no such pack","retryable":false}"#.to_vec(),
        )),
    }
}

/// Seals `blobs` (kind, plaintext) into one pack; indexes and stores it.
pub(crate) fn pack(store: &mut Store, keys: &TenantKeys, blobs: &[(BlobKind, Vec<u8>)]) -> PackId {
    let data_key = DataKey::random();
    let mut writer = PackWriter::new(&seal_data_key_random(&data_key, &keys.public_key()).unwrap());
    for (kind, plain) in blobs {
        let id = keys.id_key.blob_id(*kind, plain);
        let sealed = seal_blob_random(&data_key, &id, *kind, plain, Compression::default());
        writer.add(*kind, id, &sealed, &[]).unwrap();
    }
    let (pack_id, bytes) = writer.finish();
    for entry in PackReader::parse(&bytes).unwrap().entries() {
        let location = BlobLocation {
            id: entry.id,
            pack_id,
            offset: entry.offset,
            length: entry.length,
            kind: entry.kind,
        };
        store.index.insert(entry.id, location);
    }
    store.packs.insert(pack_id, bytes);
    pack_id
}

pub(crate) fn reader(url: &url::Url, keys: &TenantKeys) -> RepoReader {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = ServerClient::new(reqwest::Client::builder().build().unwrap(), url)
        .with_retry(RetryPolicy::default());
    RepoReader::new(client, keys.clone(), Arc::new(Throttle::new(None)))
}

fn chunk(n: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| n ^ u8::try_from(i % 253).unwrap())
        .collect()
}

#[tokio::test]
async fn blobs_of_one_pack_come_back_in_one_request_and_a_damaged_one_fails_alone() {
    // Arrange: eight chunks in one pack; the fourth one's bytes flipped.
    let keys = TenantKeys::generate();
    let mut store = Store::default();
    let chunks: Vec<Vec<u8>> = (0..8).map(|n| chunk(n, 100_000)).collect();
    let blobs: Vec<_> = chunks.iter().map(|c| (BlobKind::Data, c.clone())).collect();
    let pack_id = pack(&mut store, &keys, &blobs);
    let ids: Vec<BlobId> = chunks.iter().map(|c| keys.id_key.chunk_id(c)).collect();
    let damaged = store.index[&ids[3]];
    store.packs.get_mut(&pack_id).unwrap()[damaged.offset as usize + 40] ^= 1;
    let (url, requests) = serve(store).await;
    let reader = reader(&url, &keys);

    // Act
    let located = reader.locate(&ids).await.unwrap();
    let results = reader.read_blobs(&pack_id, &located.found).await.unwrap();

    // Assert: the header plus one coalesced range.
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    assert_eq!(results.len(), 8);
    for (id, result) in results {
        let n = ids.iter().position(|i| *i == id).unwrap();
        match result {
            Ok(plain) => assert_eq!(plain, chunks[n]),
            Err(error) => {
                assert_eq!(n, 3);
                let text = error.to_string();
                assert!(
                    text.contains(&id.to_hex()) && text.contains(&pack_id.to_hex()),
                    "{text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_missing_pack_and_an_unknown_blob_are_named() {
    let keys = TenantKeys::generate();
    let mut store = Store::default();
    let pack_id = pack(&mut store, &keys, &[(BlobKind::Data, chunk(1, 1000))]);
    store.packs.remove(&pack_id);
    let (url, _) = serve(store).await;
    let reader = reader(&url, &keys);
    let unknown = keys.id_key.chunk_id(b"never stored");

    let located = reader
        .locate(&[unknown, keys.id_key.chunk_id(&chunk(1, 1000))])
        .await
        .unwrap();
    let missing = reader
        .read_blobs(&pack_id, &located.found)
        .await
        .unwrap_err();

    assert_eq!(located.unknown, [unknown]);
    assert!(
        matches!(missing, ReadError::PackMissing { pack } if pack == pack_id),
        "{missing}"
    );
    assert!(reader.directory(&unknown).await.is_err());
}

#[tokio::test]
async fn a_directory_split_into_an_index_reads_back_joined() {
    // Arrange: 5000 entries → several leaves and an index, spread over two packs.
    let keys = TenantKeys::generate();
    let entries: Vec<TreeEntry> = (0..5000)
        .map(|i| TreeEntry {
            name: EntryName::new(format!("file-{i:05}")).unwrap(),
            mode: 0o644,
            uid: 1,
            gid: 2,
            user: Vec::new(),
            group: Vec::new(),
            mtime: Timestamp::default(),
            size: 0,
            xattrs: Vec::new(),
            content: EntryContent::Fifo,
        })
        .collect();
    let tree = entries
        .iter()
        .cloned()
        .collect::<TreeBuilder>()
        .build_keyed(&keys.id_key)
        .unwrap();
    assert!(tree.blobs.len() > 2);
    let mut store = Store::default();
    let (first, second) = tree.blobs.split_at(tree.blobs.len() / 2);
    for half in [first, second] {
        let blobs: Vec<_> = half
            .iter()
            .map(|b| (BlobKind::Tree, b.plaintext.clone()))
            .collect();
        pack(&mut store, &keys, &blobs);
    }
    let (url, _) = serve(store).await;

    // Act
    let read = reader(&url, &keys).directory(&tree.root).await.unwrap();

    // Assert
    assert_eq!(read, entries);
}
