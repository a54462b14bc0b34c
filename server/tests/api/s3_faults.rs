//! The S3 store against the real test S3 server (s3s-fs), with a
//! fault-injecting proxy in between: multipart uploads, retries with backoff
//! on `SlowDown` and 5xx, aborts that leave no parts, and upload checksums.
//!
//! s3s-fs checks a PutObject's CRC32C but not an UploadPart's (AWS checks
//! both); over plain HTTP the SDK also signs every body chunk, so there a
//! corrupted body is refused by the chunk signature first.

mod proxy;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use secrecy::ExposeSecret;
use stowage_server::configuration::S3Settings;
use stowage_server::storage::s3::{MAX_ATTEMPTS, PART_SIZE};
use stowage_server::storage::{ObjectKey, ObjectStore, S3Store, StorageError};

use crate::helpers::{random_hex, s3_settings};
use proxy::{FaultProxy, INTERNAL_ERROR, Op, Rule, SLOW_DOWN};

/// 40 MiB and a bit: three parts (16 + 16 + 8 MiB).
const LARGE: usize = 40 * 1024 * 1024 + 12_345;

/// A bucket on the real server, a store talking to it directly, and a
/// proxy with `rule` in front of it.
struct Fixture {
    settings: S3Settings,
    direct: S3Store,
    proxy: FaultProxy,
    proxied: S3Store,
}

async fn fixture(test: &str, rule: Rule) -> Option<Fixture> {
    let settings = s3_settings(test)?;
    let direct = S3Store::new(&settings);
    direct.ensure_bucket().await.unwrap();
    let proxy = FaultProxy::start(&settings.endpoint, rule).await;
    let proxied = S3Store::new(&S3Settings {
        endpoint: proxy.endpoint.clone(),
        ..settings.clone()
    });
    Some(Fixture {
        settings,
        direct,
        proxy,
        proxied,
    })
}

fn key() -> ObjectKey {
    ObjectKey::parse(&format!("faults/{}/pack", random_hex())).unwrap()
}

/// Bytes without a period that could hide a misplaced part.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

fn write_temp(data: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pack");
    std::fs::write(&path, data).unwrap();
    (dir, path)
}

/// A plain SDK client on the real server, to look behind the store's back.
fn raw_client(settings: &S3Settings) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(&settings.endpoint)
        .credentials_provider(Credentials::new(
            settings.access_key.clone(),
            settings.secret_key.expose_secret().to_owned(),
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test]
async fn a_large_file_goes_up_in_parts_and_reads_back_identical() {
    // Arrange: a proxy that injects nothing, only counts.
    let Some(f) = fixture(
        "a_large_file_goes_up_in_parts_and_reads_back_identical",
        Rule::Every {
            op: Op::Other,
            fault: SLOW_DOWN,
        },
    )
    .await
    else {
        return;
    };
    let data = noise(LARGE);
    let (_dir, path) = write_temp(&data);
    let key = key();

    // Act
    f.proxied.put_file(&key, &path).await.unwrap();

    // Assert: three parts, each with a CRC32C, one object, same bytes, and
    // ranges across a part boundary.
    assert_eq!(f.proxy.count(Op::CreateMultipartUpload), 1);
    for seen in f.proxy.seen().iter().filter(|s| s.op == Op::UploadPart) {
        assert!(seen.crc32c, "{seen:?}");
    }
    assert_eq!(f.proxy.count(Op::UploadPart), 3);
    assert_eq!(f.proxy.count(Op::CompleteMultipartUpload), 1);
    assert_eq!(f.proxy.count(Op::PutObject), 0);
    let meta = f.direct.head(&key).await.unwrap().unwrap();
    assert_eq!(meta.size, LARGE as u64);
    assert!(f.direct.get(&key).await.unwrap() == data[..]);
    let boundary = PART_SIZE;
    let across = f
        .direct
        .get_range(&key, boundary - 100..boundary + 100)
        .await
        .unwrap();
    let start = usize::try_from(boundary).unwrap() - 100;
    assert_eq!(across, Bytes::copy_from_slice(&data[start..start + 200]));
}

#[tokio::test]
async fn a_put_succeeds_after_two_slow_down_answers() {
    // Arrange
    let Some(f) = fixture(
        "a_put_succeeds_after_two_slow_down_answers",
        Rule::FirstOf {
            op: Op::PutObject,
            n: 2,
            fault: SLOW_DOWN,
        },
    )
    .await
    else {
        return;
    };
    let key = key();

    // Act
    f.proxied
        .put_bytes(&key, Bytes::from_static(b"third time lucky"))
        .await
        .unwrap();

    // Assert: three attempts, each with a CRC32C of the body.
    assert_eq!(f.proxy.count(Op::PutObject), 3);
    for seen in f.proxy.seen() {
        assert!(seen.crc32c, "{seen:?}");
    }
    assert_eq!(
        f.direct.get(&key).await.unwrap(),
        Bytes::from_static(b"third time lucky")
    );
}

#[tokio::test]
async fn a_put_that_keeps_getting_slow_down_fails_with_a_named_error_and_leaves_no_object() {
    // Arrange
    let Some(f) = fixture(
        "a_put_that_keeps_getting_slow_down_fails_with_a_named_error_and_leaves_no_object",
        Rule::Every {
            op: Op::PutObject,
            fault: SLOW_DOWN,
        },
    )
    .await
    else {
        return;
    };
    let (_dir, path) = write_temp(&noise(100_000));
    let key = key();

    // Act
    let err = f.proxied.put_file(&key, &path).await.unwrap_err();

    // Assert: every attempt was made, the error says what and why.
    assert_eq!(f.proxy.count(Op::PutObject), MAX_ATTEMPTS as usize);
    let StorageError::Remote {
        operation, target, ..
    } = &err
    else {
        panic!("expected a remote error, got {err:?}");
    };
    assert_eq!(*operation, "PutObject");
    assert_eq!(target, key.as_str());
    let text = err.to_string();
    assert!(text.contains("SlowDown"), "{text}");
    assert!(text.contains("retried with backoff"), "{text}");
    assert_eq!(f.direct.head(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_multipart_upload_whose_part_keeps_failing_is_aborted_and_leaves_nothing() {
    // Arrange: part 3 answers 500 however often it is retried, once parts 1
    // and 2 are stored.
    let Some(f) = fixture(
        "a_multipart_upload_whose_part_keeps_failing_is_aborted_and_leaves_nothing",
        Rule::Part {
            part: 3,
            after: 2,
            fault: INTERNAL_ERROR,
        },
    )
    .await
    else {
        return;
    };
    let (_dir, path) = write_temp(&noise(LARGE));
    let key = key();

    // Act
    let err = f.proxied.put_file(&key, &path).await.unwrap_err();

    // Assert: the part was retried, then the upload aborted; no object, and
    // none of the stored parts, remain.
    let StorageError::Remote {
        operation, target, ..
    } = &err
    else {
        panic!("expected a remote error, got {err:?}");
    };
    assert_eq!(*operation, "UploadPart");
    assert_eq!(*target, format!("{key} (part 3)"));
    assert!(err.to_string().contains("InternalError"), "{err}");
    let seen = f.proxy.seen();
    let stored = seen
        .iter()
        .filter(|s| s.op == Op::UploadPart && s.answered == Some(200))
        .count();
    assert_eq!(stored, 2, "{seen:?}");
    let failed = seen.iter().filter(|s| s.injected.is_some()).count();
    assert_eq!(failed, MAX_ATTEMPTS as usize);
    assert_eq!(f.proxy.count(Op::CompleteMultipartUpload), 0);
    assert_eq!(f.proxy.count(Op::AbortMultipartUpload), 1);
    assert_eq!(f.direct.head(&key).await.unwrap(), None);
    let upload_ids: std::collections::BTreeSet<String> =
        seen.into_iter().filter_map(|s| s.upload_id).collect();
    assert_eq!(upload_ids.len(), 1, "{upload_ids:?}");
    let upload_id = upload_ids.first().unwrap();
    let listed = raw_client(&f.settings)
        .list_parts()
        .bucket(&f.settings.bucket)
        .key(key.as_str())
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert!(
        listed.parts().is_empty(),
        "parts left: {:?}",
        listed.parts()
    );
}

#[tokio::test]
async fn a_multipart_upload_recovers_from_slow_down_on_its_parts() {
    // Arrange
    let Some(f) = fixture(
        "a_multipart_upload_recovers_from_slow_down_on_its_parts",
        Rule::FirstOf {
            op: Op::UploadPart,
            n: 2,
            fault: SLOW_DOWN,
        },
    )
    .await
    else {
        return;
    };
    let data = noise(LARGE);
    let (_dir, path) = write_temp(&data);
    let key = key();

    // Act
    f.proxied.put_file(&key, &path).await.unwrap();

    // Assert
    assert_eq!(f.proxy.count(Op::UploadPart), 3 + 2);
    assert_eq!(f.proxy.count(Op::AbortMultipartUpload), 0);
    assert!(f.direct.get(&key).await.unwrap() == data[..]);
}

#[tokio::test]
async fn a_body_corrupted_in_transit_is_refused_and_nothing_is_stored() {
    // Arrange: one bit of every PutObject body flipped on the way.
    let Some(f) = fixture(
        "a_body_corrupted_in_transit_is_refused_and_nothing_is_stored",
        Rule::Corrupt { op: Op::PutObject },
    )
    .await
    else {
        return;
    };
    let (_dir, path) = write_temp(&noise(1_000_000));
    let key = key();

    // Act
    let err = f.proxied.put_file(&key, &path).await.unwrap_err();

    // Assert: refused (over plain HTTP the chunk signatures catch it before
    // the CRC32C trailer does), every retry refused too, nothing stored.
    let text = err.to_string();
    assert!(text.starts_with("S3 PutObject of"), "{text}");
    assert_eq!(f.proxy.count(Op::PutObject), MAX_ATTEMPTS as usize);
    assert_eq!(f.direct.head(&key).await.unwrap(), None);
}
