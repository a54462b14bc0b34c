//! The object-store contract, run on every implementation.

use bytes::Bytes;
use std::ops::Range;
use stowage_server::configuration::ObjectStoreSettings;
use stowage_server::storage::{
    LocalStore, MemoryStore, ObjectKey, ObjectMeta, ObjectStore, S3Store, StorageError,
};

use crate::helpers::{random_hex, s3_settings, spawn_with, test_settings};

fn key(text: &str) -> ObjectKey {
    ObjectKey::parse(text).unwrap()
}

async fn range(
    store: &dyn ObjectStore,
    k: &ObjectKey,
    r: Range<u64>,
) -> Result<Bytes, StorageError> {
    store.get_range(k, r).await
}

/// Puts a file under `b`, an empty one then an adopted one under `c`;
/// returns the size of `b`.
async fn put_files(store: &dyn ObjectStore, b: &ObjectKey, c: &ObjectKey) -> u64 {
    // Put from a file, including an empty one.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("pack");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&source, &big).unwrap();
    store.put_file(b, &source).await.unwrap();
    assert_eq!(store.get(b).await.unwrap(), Bytes::from(big.clone()));
    std::fs::write(&source, b"").unwrap();
    store.put_file(c, &source).await.unwrap();
    assert_eq!(store.get(c).await.unwrap(), Bytes::new());

    // Adopt a file: stored, replacing the old object, and the file is gone.
    let adopted = dir.path().join("adopted");
    std::fs::write(&adopted, b"adopted bytes").unwrap();
    store.adopt_file(c, &adopted).await.unwrap();
    assert_eq!(
        store.get(c).await.unwrap(),
        Bytes::from_static(b"adopted bytes")
    );
    assert!(!adopted.exists());
    assert!(store.adopt_file(c, &adopted).await.is_err());
    assert_eq!(
        store.get(c).await.unwrap(),
        Bytes::from_static(b"adopted bytes")
    );
    big.len() as u64
}

/// Everything the rest of the server relies on; `root` isolates runs that
/// share a bucket.
async fn contract(store: &dyn ObjectStore) {
    let root = format!("run-{}", random_hex());
    let a = key(&format!("{root}/packs/aa/one"));
    let b = key(&format!("{root}/packs/ab/two"));
    let c = key(&format!("{root}/index/three"));
    let missing = key(&format!("{root}/missing"));

    store.check().await.unwrap();

    // Put and get, overwrite.
    store
        .put_bytes(&a, Bytes::from_static(b"first version"))
        .await
        .unwrap();
    store
        .put_bytes(&a, Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&a).await.unwrap(),
        Bytes::from_static(b"0123456789")
    );

    // Ranges: inside, clipped at the end, invalid.
    assert_eq!(
        range(store, &a, 2..5).await.unwrap(),
        Bytes::from_static(b"234")
    );
    assert_eq!(
        range(store, &a, 7..100).await.unwrap(),
        Bytes::from_static(b"789")
    );
    assert!(matches!(
        range(store, &a, 10..12).await,
        Err(StorageError::InvalidRange { .. })
    ));
    assert!(matches!(
        range(store, &a, 4..4).await,
        Err(StorageError::InvalidRange { .. })
    ));
    assert!(matches!(
        range(store, &missing, 0..1).await,
        Err(StorageError::NotFound { .. })
    ));

    // Head, exists, get of a missing key.
    assert_eq!(
        store.head(&a).await.unwrap(),
        Some(ObjectMeta {
            key: a.clone(),
            size: 10
        })
    );
    assert_eq!(store.head(&missing).await.unwrap(), None);
    assert!(store.exists(&a).await.unwrap());
    assert!(!store.exists(&missing).await.unwrap());
    assert!(matches!(
        store.get(&missing).await,
        Err(StorageError::NotFound { .. })
    ));

    let big_len = put_files(store, &b, &c).await;

    // List: string prefix, sorted, sizes.
    let listed = store.list(&format!("{root}/packs/")).await.unwrap();
    assert_eq!(
        listed,
        [
            ObjectMeta {
                key: a.clone(),
                size: 10
            },
            ObjectMeta {
                key: b.clone(),
                size: big_len
            },
        ]
    );
    assert_eq!(store.head(&c).await.unwrap().unwrap().size, 13);
    let listed = store.list(&format!("{root}/packs/ab")).await.unwrap();
    assert_eq!(listed.iter().map(|m| &m.key).collect::<Vec<_>>(), [&b]);
    assert_eq!(store.list(&format!("{root}/")).await.unwrap().len(), 3);
    assert!(
        store
            .list(&format!("{root}/nothing/"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list("../").await.is_err());

    // Delete, and delete again.
    store.delete(&a).await.unwrap();
    store.delete(&a).await.unwrap();
    assert!(!store.exists(&a).await.unwrap());
    for k in [&b, &c] {
        store.delete(k).await.unwrap();
    }
    assert!(store.list(&format!("{root}/")).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_memory_store_keeps_the_contract() {
    contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("objects")).await.unwrap();

    contract(&store).await;
}

#[tokio::test]
async fn the_local_store_moves_an_adopted_file_in_without_copying() {
    // Arrange: the source sits beside the store, as the ingest spool does.
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("objects")).await.unwrap();
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    let source = dir.path().join("tmp/pack-upload");
    std::fs::write(&source, b"pack bytes").unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&source).unwrap());
    let k = key("tenants/t1/packs/ab/abcdef");

    // Act
    store.adopt_file(&k, &source).await.unwrap();

    // Assert: the source is gone and the object is the same file, renamed.
    assert!(!source.exists());
    let object = dir.path().join("objects/tenants/t1/packs/ab/abcdef");
    assert_eq!(std::fs::read(&object).unwrap(), b"pack bytes");
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&object).unwrap()),
        inode
    );
    assert_eq!(
        store.get(&k).await.unwrap(),
        Bytes::from_static(b"pack bytes")
    );
}

#[tokio::test]
async fn the_s3_store_keeps_the_contract() {
    let Some(settings) = s3_settings("the_s3_store_keeps_the_contract") else {
        return;
    };
    let store = S3Store::new(&settings);
    store.ensure_bucket().await.unwrap();
    store.ensure_bucket().await.unwrap(); // idempotent

    contract(&store).await;
}

#[tokio::test]
async fn an_unreachable_s3_store_fails_its_check_with_a_named_error() {
    // Arrange: nothing listens on port 9 of loopback.
    let settings = stowage_server::configuration::S3Settings {
        endpoint: "http://127.0.0.1:9".to_owned(),
        bucket: "nowhere".to_owned(),
        region: "us-east-1".to_owned(),
        access_key: "a".to_owned(),
        secret_key: "s".to_owned().into(),
        path_style: true,
    };
    let store = S3Store::new(&settings);

    // Act
    let err = store.check().await.unwrap_err();

    // Assert
    assert!(
        err.to_string()
            .starts_with("S3 HeadBucket of nowhere failed"),
        "{err}"
    );
}

#[tokio::test]
async fn the_app_starts_and_is_ready_on_s3() {
    // Arrange
    let Some(s3) = s3_settings("the_app_starts_and_is_ready_on_s3") else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    settings.object_store = ObjectStoreSettings::S3(s3);

    // Act: the bucket does not exist yet; the app creates it.
    let app = spawn_with(settings, data_dir).await;
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 200);
    assert!(!app.data_dir.path().join("objects").exists());
}
