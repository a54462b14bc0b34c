//! A retried upload of a pack that garbage collection is deleting never
//! ends with the pack indexed and its object gone (`db::gc_tombstones`).
//! Each test forces one interleaving of the upload (`ingest_pack`, stopped
//! at its fault hooks) with the deletion's steps — the sweep's row
//! transaction, its object deletion, the orphan sweep — and then shows
//! that a later retry stores the pack. On SQLite and, when configured,
//! PostgreSQL.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use stowage_protocol::ids::PackId;
use stowage_server::db::gc_tombstones::{self, Admission};
use stowage_server::db::packs::{self, IndexOutcome};
use stowage_server::db::{DbError, gc_objects, gc_sweep};
use stowage_server::ingest::{
    ErrorClass, FaultHook, FaultPoint, IngestContext, IngestError, IngestOutcome, ingest_pack,
    pack_key,
};
use stowage_server::storage::ObjectStore;

use crate::gc_fixture::Stack;
use crate::gc_real_packs::{build, sealed_data, table_of};

macro_rules! on_both {
    ($postgres:ident: $($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    super::$scenario(crate::gc_fixture::Stack::sqlite().await).await;
                }
            }
        )+

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $(
                let Some(stack) = Stack::postgres(stringify!($postgres)).await else {
                    return;
                };
                $scenario(stack).await;
            )+
        }
    };
}

on_both!(
    gc_resurrection_on_postgres:
    an_upload_of_a_pack_whose_deletion_is_pending_is_refused_until_it_finished,
    an_upload_racing_a_sweep_of_the_same_pack_is_refused_at_its_index,
    an_upload_racing_the_orphan_sweep_of_its_pack_is_refused_at_its_index,
    an_upload_admitted_before_tombstones_were_pruned_is_refused_at_its_index,
);

/// A step of the deletion, run when the upload reaches a fault point.
type Step = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A hook that runs each step, once, when the upload reaches its point:
/// the upload waits for it there, as if the step ran in between.
fn hook(steps: Vec<(FaultPoint, Step)>) -> FaultHook {
    let steps = Mutex::new(steps);
    Arc::new(move |point| {
        let step = {
            let mut steps = steps.lock().unwrap();
            let found = steps.iter().position(|(at, _)| *at == point);
            found.map(|index| steps.remove(index).1)
        };
        if let Some(step) = step {
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(step()));
        }
        Ok(())
    })
}

/// The upload body: the whole pack in one chunk.
struct Body(Option<Bytes>);

impl futures_core::Stream for Body {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

async fn upload(
    stack: &Stack,
    steps: Vec<(FaultPoint, Step)>,
    pack: PackId,
    bytes: &[u8],
) -> Result<IngestOutcome, IngestError> {
    let ctx = IngestContext::new(stack.db.clone(), stack.store.clone(), stack.dir.path())
        .with_fault_hook(hook(steps));
    let body = Body(Some(Bytes::copy_from_slice(bytes)));
    ingest_pack(&ctx, stack.tenant, None, pack, body).await
}

/// The sweep's row transaction for `pack`: rows gone, deletion recorded.
async fn sweep_rows(stack: &Stack, pack: PackId, size: u64) {
    gc_sweep::ensure_epoch(&stack.db, stack.tenant)
        .await
        .unwrap();
    let mut tx = gc_sweep::begin(&stack.db, stack.tenant).await.unwrap();
    assert_eq!(tx.lock_packs(&[pack]).await.unwrap(), vec![pack]);
    tx.delete_packs(&[(pack, size)]).await.unwrap();
    tx.commit().await.unwrap();
}

/// The sweep's object deletion for `pack`, as `gc::objects` does it: the
/// object unless the pack is indexed, then the record finished.
async fn sweep_object(stack: &Stack, pack: PackId) {
    let indexed = gc_objects::indexed_packs(&stack.db, stack.tenant, &[pack])
        .await
        .unwrap();
    if indexed.is_empty() {
        stack
            .store
            .delete(&pack_key(stack.tenant, pack))
            .await
            .unwrap();
    }
    gc_objects::finish_pending(&stack.db, stack.tenant, &[pack])
        .await
        .unwrap();
}

fn step<F, Fut>(stack: &Arc<Stack>, run: F) -> Step
where
    F: FnOnce(Arc<Stack>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stack = stack.clone();
    Box::new(move || Box::pin(run(stack)))
}

fn assert_being_deleted(result: Result<IngestOutcome, IngestError>, pack: PackId) {
    let error = result.expect_err("the upload was stored while its pack was being deleted");
    assert!(
        matches!(error, IngestError::BeingDeleted { pack: named } if named == pack),
        "{error}"
    );
    assert_eq!(error.class(), ErrorClass::Unavailable);
    assert!(error.is_retryable());
}

async fn assert_stored_and_readable(stack: &Stack, pack: PackId, bytes: &[u8]) {
    assert!(stack.pack_exists(pack).await, "pack {pack} is not indexed");
    let stored = stack
        .store
        .get(&pack_key(stack.tenant, pack))
        .await
        .unwrap();
    assert_eq!(stored, bytes);
}

/// sweep-rows-commit → upload-lookup → upload-writes-object →
/// sweep-deletes-object → sweep-finishes-record → upload-index: refused at
/// the lookup already (the later steps then run without it); once the
/// deletion finished, a retry stores the pack.
async fn an_upload_of_a_pack_whose_deletion_is_pending_is_refused_until_it_finished(stack: Stack) {
    // Arrange
    let stack = Arc::new(stack);
    let blob = sealed_data(300);
    let (pack, bytes) = build(&[&blob]);
    stack.store_and_index(pack, &bytes).await;
    sweep_rows(&stack, pack, bytes.len() as u64).await;
    let steps = vec![(
        FaultPoint::AfterObjectWrite,
        step(&stack, move |stack| async move {
            sweep_object(&stack, pack).await;
        }),
    )];

    // Act
    let refused = upload(&stack, steps, pack, &bytes).await;
    sweep_object(&stack, pack).await;
    let retried = upload(&stack, Vec::new(), pack, &bytes).await;

    // Assert
    assert_being_deleted(refused, pack);
    assert!(
        matches!(retried, Ok(IngestOutcome::Stored { .. })),
        "{retried:?}"
    );
    assert_stored_and_readable(&stack, pack, &bytes).await;
}

/// upload-lookup (not indexed) → another upload indexes the pack → the
/// sweep's rows commit → upload-writes-object → sweep-deletes-object →
/// sweep-finishes-record → upload-index: refused.
async fn an_upload_racing_a_sweep_of_the_same_pack_is_refused_at_its_index(stack: Stack) {
    // Arrange
    let stack = Arc::new(stack);
    let blob = sealed_data(300);
    let (pack, bytes) = build(&[&blob]);
    let size = bytes.len() as u64;
    let other = bytes.clone();
    let steps = vec![
        (
            FaultPoint::BeforeObjectWrite,
            step(&stack, move |stack| async move {
                stack.store_and_index(pack, &other).await;
                sweep_rows(&stack, pack, size).await;
            }),
        ),
        (
            FaultPoint::AfterObjectWrite,
            step(&stack, move |stack| async move {
                sweep_object(&stack, pack).await;
            }),
        ),
    ];

    // Act
    let raced = upload(&stack, steps, pack, &bytes).await;

    // Assert: nothing names the deleted object; a retry stores it again.
    assert_being_deleted(raced, pack);
    assert!(!stack.pack_exists(pack).await);
    let retried = upload(&stack, Vec::new(), pack, &bytes).await;
    assert!(
        matches!(retried, Ok(IngestOutcome::Stored { .. })),
        "{retried:?}"
    );
    assert_stored_and_readable(&stack, pack, &bytes).await;
}

/// An earlier attempt left the pack's object unindexed; the retry's
/// lookup → retry-writes-object → a full gc run (the orphan sweep deletes
/// the object) → retry-index: refused.
async fn an_upload_racing_the_orphan_sweep_of_its_pack_is_refused_at_its_index(stack: Stack) {
    // Arrange
    let stack = Arc::new(stack);
    let blob = sealed_data(300);
    let (pack, bytes) = build(&[&blob]);
    stack
        .store
        .put_bytes(&pack_key(stack.tenant, pack), bytes.clone().into())
        .await
        .unwrap();
    let steps = vec![(
        FaultPoint::AfterObjectWrite,
        step(&stack, |stack| async move {
            let report = stack.collect(false).await;
            assert_eq!(report.orphans_deleted, 1, "{report:?}");
        }),
    )];

    // Act
    let raced = upload(&stack, steps, pack, &bytes).await;

    // Assert
    assert_being_deleted(raced, pack);
    assert!(!stack.pack_exists(pack).await);
    let retried = upload(&stack, Vec::new(), pack, &bytes).await;
    assert!(
        matches!(retried, Ok(IngestOutcome::Stored { .. })),
        "{retried:?}"
    );
    assert_stored_and_readable(&stack, pack, &bytes).await;
}

/// admission → a deletion of another pack is recorded, finished and its
/// tombstone pruned → index: refused, because the pruned tombstone might
/// have been about this pack; a fresh admission indexes it.
async fn an_upload_admitted_before_tombstones_were_pruned_is_refused_at_its_index(stack: Stack) {
    // Arrange
    let (pack, bytes) = build(&[&sealed_data(300)]);
    let (other, other_bytes) = build(&[&sealed_data(300)]);
    stack.store_and_index(other, &other_bytes).await;
    let Admission::Open { mark } = gc_tombstones::admit(&stack.db, stack.tenant, pack)
        .await
        .unwrap()
    else {
        panic!("a pack never deleted is being deleted");
    };
    sweep_rows(&stack, other, other_bytes.len() as u64).await;
    sweep_object(&stack, other).await;

    // Act
    let pruned = gc_tombstones::prune(&stack.db, stack.tenant, i64::MAX)
        .await
        .unwrap();
    let size = bytes.len() as u64;
    let table = table_of(&bytes);
    let stale = packs::index_admitted(&stack.db, stack.tenant, None, pack, size, &table, mark)
        .await
        .unwrap();
    let Admission::Open { mark: fresh } = gc_tombstones::admit(&stack.db, stack.tenant, pack)
        .await
        .unwrap()
    else {
        panic!("a pack never deleted is being deleted");
    };
    let indexed = packs::index_admitted(&stack.db, stack.tenant, None, pack, size, &table, fresh)
        .await
        .unwrap();

    // Assert
    assert_eq!(pruned, 1);
    assert_eq!(stale, IndexOutcome::BeingDeleted);
    assert_eq!(indexed, IndexOutcome::Indexed);
    assert!(matches!(
        packs::get(&stack.db, stack.tenant, other).await,
        Err(DbError::NotFound { .. })
    ));
}
