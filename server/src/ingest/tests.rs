//! Ingest against a fresh SQLite database and an in-memory (or local) store,
//! with real sealed blobs in packs built by the protocol's `PackWriter`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use stowage_protocol::blob::{BlobKind, Compression, seal_blob_random};
use stowage_protocol::crypto::{DataKey, IdKey, TenantKeys, seal_data_key_random};
use stowage_protocol::ids::{BlobId, PackId, TenantId};
use stowage_protocol::pack::{
    PACK_HEADER_LEN, PACK_TRAILER_LEN, PackError, PackTrailer, PackWriter,
};
use tempfile::TempDir;

use super::*;
use crate::configuration::DatabaseSettings;
use crate::db::tenants;
use crate::domain::TenantName;
use crate::storage::{LocalStore, MemoryStore};

/// A fresh database with one tenant, a store and a context; keeps its temp dir alive.
struct Fixture {
    _dir: TempDir,
    db: Database,
    tenant: TenantId,
    memory: Arc<MemoryStore>,
    ctx: IngestContext,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&DatabaseSettings::sqlite_in(dir.path()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let tenant = tenants::insert(&db, &TenantName::parse("Acme").unwrap())
        .await
        .unwrap()
        .id;
    let memory = Arc::new(MemoryStore::new());
    let ctx = IngestContext::new(db.clone(), memory.clone(), dir.path());
    Fixture {
        _dir: dir,
        db,
        tenant,
        memory,
        ctx,
    }
}

/// One blob as the test expects to find it in the index.
struct Expected {
    id: BlobId,
    kind: BlobKind,
    refs: Vec<BlobId>,
}

/// A pack of `data_blobs` data blobs of `blob_size` plaintext bytes each and
/// one tree referencing the first two (when there are two).
fn build_pack(data_blobs: usize, blob_size: usize) -> (PackId, Vec<u8>, Vec<Expected>) {
    let keys = TenantKeys::generate();
    let data_key = DataKey::random();
    let sealed_key = seal_data_key_random(&data_key, &keys.public_key()).unwrap();
    let id_key = IdKey::random();
    let mut writer = PackWriter::new(&sealed_key);
    let mut expected = Vec::new();
    for n in 0..data_blobs {
        let plaintext = vec![u8::try_from(n % 251).unwrap(); blob_size];
        let id = id_key.chunk_id(&plaintext);
        let sealed = seal_blob_random(
            &data_key,
            &id,
            BlobKind::Data,
            &plaintext,
            Compression::NONE,
        );
        writer.add(BlobKind::Data, id, &sealed, &[]).unwrap();
        expected.push(Expected {
            id,
            kind: BlobKind::Data,
            refs: Vec::new(),
        });
    }
    if data_blobs >= 2 {
        let mut refs = vec![expected[0].id, expected[1].id];
        refs.sort_unstable();
        let plaintext = b"a tree listing two files";
        let id = id_key.tree_id(plaintext);
        let sealed = seal_blob_random(&data_key, &id, BlobKind::Tree, plaintext, Compression::NONE);
        writer.add(BlobKind::Tree, id, &sealed, &refs).unwrap();
        expected.push(Expected {
            id,
            kind: BlobKind::Tree,
            refs,
        });
    }
    let (pack_id, bytes) = writer.finish();
    (pack_id, bytes, expected)
}

/// A body that hands out `bytes` in chunks of `chunk` bytes and counts them;
/// it can fail instead of yielding chunk number `fail_at`.
struct ChunkStream {
    bytes: Bytes,
    chunk: usize,
    position: usize,
    yielded: Arc<AtomicUsize>,
    fail_at: Option<usize>,
}

fn chunks(bytes: &[u8], chunk: usize) -> ChunkStream {
    ChunkStream {
        bytes: Bytes::copy_from_slice(bytes),
        chunk,
        position: 0,
        yielded: Arc::new(AtomicUsize::new(0)),
        fail_at: None,
    }
}

impl Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.position >= self.bytes.len() {
            return Poll::Ready(None);
        }
        let count = self.yielded.fetch_add(1, Ordering::SeqCst);
        if self.fail_at == Some(count) {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset by peer"))));
        }
        let end = (self.position + self.chunk).min(self.bytes.len());
        let slice = self.bytes.slice(self.position..end);
        self.position = end;
        Poll::Ready(Some(Ok(slice)))
    }
}

async fn assert_not_indexed(f: &Fixture, pack: PackId, blobs: &[Expected]) {
    assert!(matches!(
        packs::get(&f.db, f.tenant, pack).await,
        Err(DbError::NotFound { .. })
    ));
    let ids: Vec<BlobId> = blobs.iter().map(|b| b.id).collect();
    assert!(
        packs::locate(&f.db, f.tenant, &ids)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn assert_indexed(f: &Fixture, pack: PackId, bytes: &[u8], blobs: &[Expected]) {
    let row = packs::get(&f.db, f.tenant, pack).await.unwrap();
    assert_eq!(row.size, bytes.len() as u64);
    assert_eq!(row.blob_count, blobs.len() as u64);
    let ids: Vec<BlobId> = blobs.iter().map(|b| b.id).collect();
    let locations = packs::locate(&f.db, f.tenant, &ids).await.unwrap();
    assert_eq!(locations.len(), blobs.len());
    let mut expected_offset = u32::try_from(PACK_HEADER_LEN).unwrap();
    for blob in blobs {
        let location = locations.iter().find(|l| l.id == blob.id).unwrap();
        assert_eq!(location.pack_id, pack);
        assert_eq!(location.kind, blob.kind);
        assert_eq!(location.offset, expected_offset);
        // The sealed blob really lies there: its header names its kind.
        assert_eq!(bytes[location.offset as usize + 3], blob.kind.as_u8());
        expected_offset += location.length;
        assert_eq!(
            packs::tree_refs(&f.db, f.tenant, blob.id).await.unwrap(),
            blob.refs
        );
    }
}

fn temp_files(ctx: &IngestContext) -> usize {
    std::fs::read_dir(ctx.temp_dir()).map_or(0, Iterator::count)
}

#[tokio::test]
async fn a_pack_is_stored_and_every_blob_indexed_with_its_offset_and_refs() {
    // Arrange
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(3, 1000);

    // Act
    let outcome = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 100))
        .await
        .unwrap();

    // Assert
    assert_eq!(
        outcome,
        IngestOutcome::Stored {
            size: bytes.len() as u64,
            blob_count: 4,
            blob_ids: blobs.iter().map(|blob| blob.id).collect(),
        }
    );
    assert_indexed(&f, pack, &bytes, &blobs).await;
    let key = pack_key(f.tenant, pack);
    assert_eq!(f.memory.get(&key).await.unwrap(), bytes);
    assert!(key.as_str().starts_with(&format!(
        "tenants/{}/packs/{}/",
        f.tenant,
        &pack.to_hex()[..2]
    )));
    assert_eq!(temp_files(&f.ctx), 0);
}

#[tokio::test]
async fn a_pack_is_stored_through_the_local_filesystem_store() {
    // Arrange
    let f = fixture().await;
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(
        LocalStore::open(&root.path().join("objects"))
            .await
            .unwrap(),
    );
    let ctx = IngestContext::new(f.db.clone(), store.clone(), root.path());
    let (pack, bytes, blobs) = build_pack(2, 5000);

    // Act
    let outcome = ingest_pack(&ctx, f.tenant, None, pack, chunks(&bytes, 4096))
        .await
        .unwrap();

    // Assert
    assert!(matches!(
        outcome,
        IngestOutcome::Stored { blob_count: 3, .. }
    ));
    assert_eq!(store.get(&pack_key(f.tenant, pack)).await.unwrap(), bytes);
    assert_indexed(&f, pack, &bytes, &blobs).await;
    assert_eq!(temp_files(&ctx), 0);
}

#[tokio::test]
async fn a_retried_upload_is_already_present_without_reading_the_body() {
    // Arrange
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(2, 300);
    ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap();
    let retry = chunks(&bytes, 64);
    let polled = retry.yielded.clone();

    // Act
    let outcome = ingest_pack(&f.ctx, f.tenant, None, pack, retry)
        .await
        .unwrap();

    // Assert
    let IngestOutcome::AlreadyPresent {
        size,
        blob_count,
        mut blob_ids,
    } = outcome
    else {
        panic!("expected already present, got {outcome:?}");
    };
    assert_eq!((size, blob_count), (bytes.len() as u64, 3));
    let mut expected: Vec<_> = blobs.iter().map(|blob| blob.id).collect();
    expected.sort();
    blob_ids.sort();
    assert_eq!(blob_ids, expected);
    assert_eq!(polled.load(Ordering::SeqCst), 0);
    assert_eq!(f.memory.list("tenants/").await.unwrap().len(), 1);
    assert_indexed(&f, pack, &bytes, &blobs).await;
}

#[tokio::test]
async fn the_same_pack_from_another_tenant_is_stored_under_that_tenant() {
    // Arrange
    let f = fixture().await;
    let other = tenants::insert(&f.db, &TenantName::parse("Globex").unwrap())
        .await
        .unwrap()
        .id;
    let (pack, bytes, _) = build_pack(1, 300);
    ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap();

    // Act
    let outcome = ingest_pack(&f.ctx, other, None, pack, chunks(&bytes, 64))
        .await
        .unwrap();

    // Assert
    assert!(matches!(outcome, IngestOutcome::Stored { .. }));
    assert!(f.memory.exists(&pack_key(other, pack)).await.unwrap());
    assert_eq!(f.memory.list("tenants/").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_body_with_the_wrong_hash_stores_and_indexes_nothing() {
    // Arrange
    let f = fixture().await;
    let (actual, bytes, blobs) = build_pack(2, 300);
    let named = PackId::digest(b"some other pack");

    // Act
    let err = ingest_pack(&f.ctx, f.tenant, None, named, chunks(&bytes, 64))
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(err, IngestError::WrongPackHash { expected, actual: a } if expected == named && a == actual),
        "{err}"
    );
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_not_indexed(&f, named, &blobs).await;
    assert_not_indexed(&f, actual, &blobs).await;
    assert_eq!(temp_files(&f.ctx), 0);
}

#[tokio::test]
async fn a_body_shorter_than_header_table_and_trailer_is_truncated() {
    let f = fixture().await;
    let (pack, bytes, _) = build_pack(1, 300);
    for body in [
        &bytes[..0],
        &bytes[..50],
        &bytes[..usize::try_from(MIN_PACK_SIZE).unwrap() - 1],
    ] {
        let err = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(body, 16))
            .await
            .unwrap_err();
        assert!(
            matches!(err, IngestError::Truncated { min: 116, .. }),
            "{err}"
        );
    }
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_eq!(temp_files(&f.ctx), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_as_soon_as_it_passes_it() {
    // Arrange
    let f = fixture().await;
    let ctx = f.ctx.clone().with_max_pack_size(1024 * 1024);
    let (pack, bytes, blobs) = build_pack(8, 1024 * 1024);
    let body = chunks(&bytes, 64 * 1024);
    let polled = body.yielded.clone();

    // Act
    let err = ingest_pack(&ctx, f.tenant, None, pack, body)
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(
            err,
            IngestError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::PayloadTooLarge);
    assert_eq!(polled.load(Ordering::SeqCst), 17, "read past the limit");
    assert_not_indexed(&f, pack, &blobs).await;
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_eq!(temp_files(&ctx), 0);
}

#[tokio::test]
async fn an_eight_mib_pack_is_consumed_chunk_by_chunk() {
    // Arrange
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(8, 1024 * 1024);
    let body = chunks(&bytes, 64 * 1024);
    let polled = body.yielded.clone();

    // Act
    ingest_pack(&f.ctx, f.tenant, None, pack, body)
        .await
        .unwrap();

    // Assert
    assert_eq!(
        polled.load(Ordering::SeqCst),
        bytes.len().div_ceil(64 * 1024)
    );
    assert_indexed(&f, pack, &bytes, &blobs).await;
}

#[tokio::test]
async fn a_body_that_fails_midway_leaves_nothing_behind() {
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(2, 5000);
    let mut body = chunks(&bytes, 1000);
    body.fail_at = Some(3);

    let err = ingest_pack(&f.ctx, f.tenant, None, pack, body)
        .await
        .unwrap_err();

    assert!(
        err.to_string().contains("connection reset by peer"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&f.ctx), 0);
}

/// `bytes` with `edit` applied and the trailer's table hash recomputed, so the
/// table hash check passes and only the later table checks can object.
fn with_table_edit(bytes: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let trailer_at = bytes.len() - PACK_TRAILER_LEN;
    let trailer = PackTrailer::decode(&bytes[trailer_at..]).unwrap();
    let table_at = usize::try_from(trailer.table_offset).unwrap();
    edit(&mut bytes[table_at..trailer_at]);
    let fixed = PackTrailer::for_table(&bytes[table_at..trailer_at], trailer.table_offset);
    bytes[trailer_at..].copy_from_slice(&fixed.encode());
    bytes
}

#[tokio::test]
async fn a_pack_whose_table_calls_a_data_blob_a_tree_is_rejected_naming_the_blob() {
    // Arrange: the first sealed blob's header says tree; its table entry
    // says data. The table and trailer are untouched, so only the blob
    // header check can notice.
    let f = fixture().await;
    let (_, mut bytes, blobs) = build_pack(2, 300);
    let first_kind_byte = stowage_protocol::pack::PACK_HEADER_LEN + 3;
    assert_eq!(bytes[first_kind_byte], BlobKind::Data.as_u8());
    bytes[first_kind_byte] = BlobKind::Tree.as_u8();
    let pack = PackId::digest(&bytes);

    // Act
    let err = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(
            &err,
            IngestError::InconsistentTable {
                source: PackError::BadBlobHeader { id, .. },
                ..
            } if *id == blobs[0].id
        ),
        "{err}"
    );
    assert!(err.to_string().contains("header says tree"), "{err}");
    assert_eq!(err.code(), stowage_protocol::api::codes::PACK_REJECTED);
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&f.ctx), 0);
}

#[tokio::test]
async fn a_pack_with_an_inconsistent_header_or_table_is_rejected_by_the_table_check() {
    // Arrange: each damaged pack hashes to the id it is uploaded under.
    let f = fixture().await;
    let (_, bytes, blobs) = build_pack(2, 300);
    let table_at = usize::try_from(
        PackTrailer::decode(&bytes[bytes.len() - PACK_TRAILER_LEN..])
            .unwrap()
            .table_offset,
    )
    .unwrap();
    let mut flipped = bytes.clone();
    flipped[table_at + 7] ^= 0x40;
    // The first entry's offset field: count (4), kind (1), id (32).
    let misplaced = with_table_edit(&bytes, |table| table[37] ^= 1);
    let mut version = bytes.clone();
    version[4] = 9;
    let cases = [
        (flipped, PackError::TableHashMismatch),
        (version, PackError::UnsupportedVersion(9)),
    ];

    for (damaged, want) in cases {
        // Act
        let pack = PackId::digest(&damaged);
        let err = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&damaged, 64))
            .await
            .unwrap_err();

        // Assert
        assert!(
            matches!(&err, IngestError::InconsistentTable { source, .. } if *source == want),
            "{err}"
        );
        assert_eq!(err.code(), stowage_protocol::api::codes::PACK_REJECTED);
    }
    let pack = PackId::digest(&misplaced);
    let err = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&misplaced, 64))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            IngestError::InconsistentTable {
                source: PackError::BlobMisplaced { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&f.ctx), 0);
}

#[tokio::test]
async fn an_unavailable_store_indexes_nothing_and_a_later_retry_succeeds() {
    // Arrange
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(2, 300);
    f.memory.set_unavailable(true);

    // Act
    let err = ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap_err();

    // Assert
    assert!(matches!(err, IngestError::Storage { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Unavailable);
    assert!(err.is_retryable());
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&f.ctx), 0);
    f.memory.set_unavailable(false);
    ingest_pack(&f.ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap();
    assert_indexed(&f, pack, &bytes, &blobs).await;
}

#[tokio::test]
async fn a_failure_after_the_object_write_leaves_an_unindexed_object_and_a_retry_indexes_it() {
    // Arrange
    let f = fixture().await;
    let armed = Arc::new(AtomicBool::new(true));
    let hook_armed = armed.clone();
    let (pack, bytes, blobs) = build_pack(3, 300);
    let hook: FaultHook = Arc::new(move |point| {
        if point == FaultPoint::AfterObjectWrite && hook_armed.load(Ordering::SeqCst) {
            return Err(IngestError::Injected { pack, point });
        }
        Ok(())
    });
    let ctx = f.ctx.clone().with_fault_hook(hook);

    // Act
    let err = ingest_pack(&ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap_err();

    // Assert: the object exists, but nothing lists it.
    assert!(matches!(
        err,
        IngestError::Injected {
            point: FaultPoint::AfterObjectWrite,
            ..
        }
    ));
    assert!(f.memory.exists(&pack_key(f.tenant, pack)).await.unwrap());
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&ctx), 0);

    // Act: the agent retries the same upload.
    armed.store(false, Ordering::SeqCst);
    let outcome = ingest_pack(&ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap();

    // Assert
    assert!(matches!(
        outcome,
        IngestOutcome::Stored { blob_count: 4, .. }
    ));
    assert_indexed(&f, pack, &bytes, &blobs).await;
    assert_eq!(f.memory.list("tenants/").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_after_the_body_is_checked_still_gets_the_pack_indexed() {
    // Arrange: the hook tells the test the body was received and checked,
    // then holds the store step back until the caller is gone.
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(2, 300);
    let (checked_tx, checked_rx) = tokio::sync::oneshot::channel();
    let checked_tx = std::sync::Mutex::new(Some(checked_tx));
    let (gone_tx, gone_rx) = std::sync::mpsc::channel::<()>();
    let gone_rx = std::sync::Mutex::new(gone_rx);
    let hook: FaultHook = Arc::new(move |point| {
        if point == FaultPoint::BeforeObjectWrite {
            if let Some(tx) = checked_tx.lock().unwrap().take() {
                tx.send(()).unwrap();
            }
            // Bounded, so a caller that never lets go fails the test
            // rather than hanging it.
            let _ = gone_rx
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(5));
        }
        Ok(())
    });
    let ctx = f.ctx.clone().with_fault_hook(hook);

    // Act: the request is dropped, as actix drops it when the client
    // disconnects, while the pack waits to be written.
    tokio::select! {
        _ = ingest_pack(&ctx, f.tenant, None, pack, chunks(&bytes, 64)) => {
            panic!("the ingest finished while its store step was held back");
        }
        _ = checked_rx => {}
    }
    let _ = gone_tx.send(());

    // Assert: the detached store step finishes on its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while packs::get(&f.db, f.tenant, pack).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pack was never indexed after its caller went away"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_indexed(&f, pack, &bytes, &blobs).await;
    assert_eq!(
        f.memory.get(&pack_key(f.tenant, pack)).await.unwrap(),
        bytes
    );
}

#[tokio::test]
async fn a_failure_before_the_object_write_touches_neither_store_nor_index() {
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(1, 300);
    let hook: FaultHook = Arc::new(move |point| match point {
        FaultPoint::BeforeObjectWrite => Err(IngestError::Injected { pack, point }),
        FaultPoint::AfterObjectWrite => Ok(()),
    });
    let ctx = f.ctx.clone().with_fault_hook(hook);

    let err = ingest_pack(&ctx, f.tenant, None, pack, chunks(&bytes, 64))
        .await
        .unwrap_err();

    assert_eq!(err.class(), ErrorClass::Internal);
    assert!(f.memory.list("").await.unwrap().is_empty());
    assert_not_indexed(&f, pack, &blobs).await;
    assert_eq!(temp_files(&ctx), 0);
}

#[tokio::test]
async fn stale_spool_files_are_removed_and_fresh_ones_and_other_files_kept() {
    // Arrange
    let f = fixture().await;
    let dir = f.ctx.temp_dir().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("pack-aa-1.part");
    let fresh = dir.join("pack-bb-2.part");
    let other = dir.join("notes.txt");
    for path in [&old, &fresh, &other] {
        std::fs::write(path, b"x").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - Duration::from_hours(1);
    for path in [&old, &other] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }

    // Act
    let removed = f
        .ctx
        .remove_stale_temp_files(Duration::from_mins(10))
        .await
        .unwrap();

    // Assert
    assert_eq!(removed, 1);
    assert!(!old.exists() && fresh.exists() && other.exists());
}

#[tokio::test]
async fn a_missing_spool_directory_has_nothing_stale() {
    let f = fixture().await;
    assert_eq!(
        f.ctx.remove_stale_temp_files(Duration::ZERO).await.unwrap(),
        0
    );
}

/// An open upload session of a fresh agent of the fixture's tenant.
async fn session(f: &Fixture) -> UploadSessionId {
    let credential = crate::auth::token::generate();
    let agent = crate::db::agents::insert(
        &f.db,
        f.tenant,
        crate::db::agents::NewAgent {
            id: stowage_protocol::ids::AgentId::random(),
            name: &format!("agent-{}", crate::db::new_row_id()),
            hostname: "db1.example.com",
            credential_hash: &credential.hash,
        },
    )
    .await
    .unwrap();
    upload_sessions::open(&f.db, f.tenant, agent.id, Duration::from_mins(10))
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn an_ingest_for_a_session_leases_every_blob_of_the_pack_and_so_does_a_retry() {
    // Arrange
    let f = fixture().await;
    let first = session(&f).await;
    let second = session(&f).await;
    let (pack, bytes, blobs) = build_pack(3, 100);

    // Act
    let stored = ingest_pack(&f.ctx, f.tenant, Some(first), pack, chunks(&bytes, 64))
        .await
        .unwrap();
    let retried = ingest_pack(&f.ctx, f.tenant, Some(second), pack, chunks(&bytes, 64))
        .await
        .unwrap();

    // Assert
    assert!(matches!(stored, IngestOutcome::Stored { .. }));
    assert!(matches!(retried, IngestOutcome::AlreadyPresent { .. }));
    assert_indexed(&f, pack, &bytes, &blobs).await;
    for id in [first, second] {
        let leased = upload_sessions::leased_count(&f.db, f.tenant, id)
            .await
            .unwrap();
        assert_eq!(leased, blobs.len() as u64, "session {id}");
    }
}

#[tokio::test]
async fn a_pack_whose_lease_cannot_be_written_is_not_indexed_either() {
    // Arrange: a session id that does not exist, so the lease insert fails
    // inside the indexing transaction.
    let f = fixture().await;
    let (pack, bytes, blobs) = build_pack(3, 100);

    // Act
    let err = ingest_pack(
        &f.ctx,
        f.tenant,
        Some(UploadSessionId::random()),
        pack,
        chunks(&bytes, 64),
    )
    .await
    .unwrap_err();

    // Assert
    assert!(
        matches!(err, IngestError::Database { .. }),
        "unexpected error: {err}"
    );
    assert_not_indexed(&f, pack, &blobs).await;
}
