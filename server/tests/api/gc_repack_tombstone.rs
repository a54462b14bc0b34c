//! A repack never indexes a new pack whose object another run's deletion
//! removes. Two runs that repack the same pack with the same live set write
//! the same bytes, so the same pack id; when one gives up on its copy (it
//! found a blob leased, or an orphan sweep took the object) it records the
//! copy's deletion and deletes the object. If the other wrote its copy
//! while that deletion was unfinished, and the deletion finished before the
//! other's index transaction, the index would name a pack that is gone. A
//! repack therefore admits its copy like an upload: it does not write while
//! a deletion of that very pack is unfinished (`db::gc_tombstones`).
//!
//! The other run is played by the store this run uses: it records the
//! deletion of exactly the copy this run will make while this run sweeps
//! (after its first step, before its repack), and finishes it right after
//! any write of the copy. On SQLite and, when configured,
//! PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use stowage_protocol::ids::{PackId, TenantId};
use stowage_protocol::pack::{PackReader, PackWriter};
use stowage_server::db::{Database, gc_objects, gc_sweep, packs};
use stowage_server::gc::{self, GcOptions, GcReport};
use stowage_server::ingest::pack_key;
use stowage_server::storage::{ObjectKey, ObjectMeta, ObjectStore, StoreFuture};

use crate::gc_fixture::Stack;
use crate::gc_real_packs::{sealed_data, sealed_tree};

on_both_stacks!(
    gc_repack_tombstone_on_postgres:
    a_repack_waits_for_another_run_s_deletion_of_its_copy_before_writing_it,
);

/// A store that plays the other run: when this run deletes the object of
/// a wholly dead pack (after its first step finished any deletion recorded
/// earlier, before its repack reads its mark), the other run records the
/// deletion of the copy; right after any write of the copy, it finishes
/// that deletion: deletes the object and its record.
#[derive(Debug)]
struct OtherRunDeletingTheCopy {
    inner: Arc<dyn ObjectStore>,
    db: Database,
    tenant: TenantId,
    swept: PackId,
    copy: (PackId, u64),
}

impl ObjectStore for OtherRunDeletingTheCopy {
    fn put_bytes<'a>(&'a self, key: &'a ObjectKey, data: Bytes) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.put_bytes(key, data).await?;
            if *key == pack_key(self.tenant, self.copy.0) {
                self.inner.delete(key).await?;
                gc_objects::finish_pending(&self.db, self.tenant, &[self.copy.0])
                    .await
                    .unwrap();
            }
            Ok(())
        })
    }
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.inner.delete(key).await?;
            if *key == pack_key(self.tenant, self.swept) {
                let mut tx = gc_sweep::begin(&self.db, self.tenant).await.unwrap();
                tx.record_deletions(&[self.copy]).await.unwrap();
                tx.commit().await.unwrap();
            }
            Ok(())
        })
    }
    fn get<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Bytes> {
        self.inner.get(key)
    }
    fn put_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        self.inner.put_file(key, path)
    }
    fn get_range<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: std::ops::Range<u64>,
    ) -> StoreFuture<'a, Bytes> {
        self.inner.get_range(key, range)
    }
    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectMeta>> {
        self.inner.head(key)
    }
    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn check(&self) -> StoreFuture<'_, ()> {
        self.inner.check()
    }
}

/// The pack a repack makes of `old`'s bytes keeping `live` (in the old
/// pack's order, under its sealed key): its id and size.
fn expected_copy(old: &[u8], live: &[stowage_protocol::ids::BlobId]) -> (PackId, u64) {
    let reader = PackReader::parse(old).unwrap();
    let mut writer = PackWriter::new(reader.sealed_key());
    let mut entries: Vec<_> = reader
        .entries()
        .iter()
        .filter(|entry| live.contains(&entry.id))
        .collect();
    entries.sort_by_key(|entry| entry.offset);
    for entry in entries {
        let sealed = reader.blob_bytes(entry).unwrap();
        writer
            .add(entry.kind, entry.id, sealed, &entry.refs)
            .unwrap();
    }
    let (id, bytes) = writer.finish();
    (id, bytes.len() as u64)
}

async fn collect(stack: &Stack, store: &dyn ObjectStore) -> GcReport {
    let options = GcOptions {
        orphan_min_age: std::time::Duration::from_hours(1),
        repack_below_percent: 100,
        ..GcOptions::default()
    };
    gc::collect(&stack.db, store, stack.tenant, options)
        .await
        .unwrap()
}

async fn a_repack_waits_for_another_run_s_deletion_of_its_copy_before_writing_it(stack: &Stack) {
    // Arrange: a partly dead pack, and the other run (in the store).
    let a = sealed_data(500);
    let dead = sealed_data(3000);
    let root = sealed_tree(100, &[a.id]);
    let old = stack.real_pack(&[&root, &dead, &a]).await;
    let swept = stack.real_pack(&[&sealed_data(700)]).await;
    stack.snapshot(root.id).await;
    let old_bytes = stack.store.get(&pack_key(stack.tenant, old)).await.unwrap();
    let copy = expected_copy(&old_bytes, &[root.id, a.id]);
    gc_sweep::ensure_epoch(&stack.db, stack.tenant)
        .await
        .unwrap();
    let racing: Arc<dyn ObjectStore> = Arc::new(OtherRunDeletingTheCopy {
        inner: stack.store.clone(),
        db: stack.db.clone(),
        tenant: stack.tenant,
        swept,
        copy,
    });
    let copy = copy.0;

    // Act: a run while the deletion is unfinished; then one after it.
    let during = collect(stack, racing.as_ref()).await;
    let during_old_indexed = stack.pack_exists(old).await;
    let during_copy_indexed = stack.pack_exists(copy).await;
    let after = collect(stack, stack.store.as_ref()).await;

    // Assert: the first run swept the dead pack and left the other as it was; the next, which
    // finished the deletion before it marked, made exactly that copy.
    assert_eq!(during.packs_deleted, 1, "{during:?}");
    assert_eq!(during.packs_repacked, 0, "{during:?}");
    assert_eq!(during.repack_packs_kept, 1, "{during:?}");
    assert!(during_old_indexed, "the old pack lost its rows");
    assert!(
        !during_copy_indexed,
        "the copy was indexed although the other run's deletion removed its object"
    );
    assert_eq!(after.packs_repacked, 1, "{after:?}");
    let location = packs::locate(&stack.db, stack.tenant, &[a.id])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        location.pack_id, copy,
        "the repack's copy is not the one expected"
    );
    assert!(
        stack.object_exists(copy).await,
        "the indexed copy has no object"
    );
    assert!(!stack.object_exists(old).await);
}
