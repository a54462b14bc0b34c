//! Multipart upload of large files: parts read straight from the file,
//! several in flight at once, and no trace left when anything fails.
//!
//! Objects larger than [`MULTIPART_THRESHOLD`] go up in [`PART_SIZE`] parts,
//! at most [`PART_CONCURRENCY`] at a time. Each part's body is a window of the
//! file (offset + length), streamed by the SDK and re-read on a retry, so no
//! part — let alone the object — is ever held in memory. Each part carries a
//! CRC32C of its bytes. The object appears only when CompleteMultipartUpload
//! succeeds, atomically, so a failed upload never leaves a visible object.
//!
//! On any failure (a part that still fails after the client's retries, or
//! Complete failing) the other parts are cancelled and the upload is aborted,
//! which deletes the parts already stored. If the upload future is dropped
//! half-way (the request was cancelled), a guard aborts it in the background.
//! Only an abort that itself fails can leave parts behind; that is logged
//! with the upload id, and a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) is the recommended backstop.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use tokio::task::JoinSet;

use super::{ObjectKey, StorageError, remote};

const MIB: u64 = 1024 * 1024;
/// Files larger than this are uploaded in parts; smaller ones in one PutObject.
pub const MULTIPART_THRESHOLD: u64 = 32 * MIB;
/// Size of every part but the last (S3 wants at least 5 MiB).
pub const PART_SIZE: u64 = 16 * MIB;
/// Parts in flight at once per upload: enough to fill a link, while a full
/// 128 MiB pack holds at most 4 connections.
pub const PART_CONCURRENCY: usize = 4;
/// S3's smallest part (except the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;

/// Where one multipart upload goes.
struct Target {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
}

/// Uploads the `size`-byte file at `path` under `key` in parts of `part_size`.
pub(super) async fn upload(
    client: &Client,
    bucket: &str,
    key: &ObjectKey,
    path: &Path,
    size: u64,
    part_size: u64,
) -> Result<(), StorageError> {
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key.as_str())
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .map_err(|err| remote("CreateMultipartUpload", key.as_str(), &err))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| StorageError::Remote {
            operation: "CreateMultipartUpload",
            target: key.as_str().to_owned(),
            message: "the answer has no upload id".to_owned(),
        })?
        .to_owned();
    let mut guard = AbortOnDrop(Some(Target {
        client: client.clone(),
        bucket: bucket.to_owned(),
        key: key.as_str().to_owned(),
        upload_id,
    }));
    let target = guard.0.as_ref().expect("the guard is armed");
    let result = match upload_parts(target, path, size, part_size).await {
        Ok(parts) => complete(target, parts).await,
        Err(err) => Err(err),
    };
    let target = guard.0.take().expect("the guard is armed");
    if result.is_err() {
        abort(&target).await;
    }
    result
}

/// Uploads every part, [`PART_CONCURRENCY`] at a time; on the first failure
/// cancels the rest and returns it.
async fn upload_parts(
    target: &Target,
    path: &Path,
    size: u64,
    part_size: u64,
) -> Result<Vec<CompletedPart>, StorageError> {
    let count = size.div_ceil(part_size);
    let mut tasks = JoinSet::new();
    let mut next = 0;
    let mut done = Vec::new();
    loop {
        while tasks.len() < PART_CONCURRENCY && next < count {
            let offset = next * part_size;
            let part = Part {
                number: i32::try_from(next + 1).map_err(|_| too_many_parts(target, count))?,
                offset,
                length: part_size.min(size - offset),
            };
            tasks.spawn(upload_part(
                target.client.clone(),
                target.bucket.clone(),
                target.key.clone(),
                target.upload_id.clone(),
                path.to_owned(),
                part,
            ));
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => Err(StorageError::Remote {
                operation: "UploadPart",
                target: target.key.clone(),
                message: format!("the part upload task stopped - {err}"),
            }),
        };
        match outcome {
            Ok(part) => done.push(part),
            Err(err) => {
                tasks.shutdown().await;
                return Err(err);
            }
        }
    }
    done.sort_by_key(CompletedPart::part_number);
    Ok(done)
}

fn too_many_parts(target: &Target, count: u64) -> StorageError {
    StorageError::Remote {
        operation: "UploadPart",
        target: target.key.clone(),
        message: format!("{count} parts are more than S3 allows"),
    }
}

/// One window of the source file.
#[derive(Debug, Clone, Copy)]
struct Part {
    number: i32,
    offset: u64,
    length: u64,
}

async fn upload_part(
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    path: PathBuf,
    part: Part,
) -> Result<CompletedPart, StorageError> {
    let body = ByteStream::read_from()
        .path(&path)
        .offset(part.offset)
        .length(Length::Exact(part.length))
        .build()
        .await
        .map_err(|err| StorageError::Remote {
            operation: "UploadPart",
            target: key.clone(),
            message: format!(
                "cannot read part {} of source file {} - {}",
                part.number,
                path.display(),
                aws_sdk_s3::error::DisplayErrorContext(&err)
            ),
        })?;
    let output = client
        .upload_part()
        .bucket(&bucket)
        .key(&key)
        .upload_id(&upload_id)
        .part_number(part.number)
        .content_length(i64::try_from(part.length).expect("a part is smaller than 2^63 bytes"))
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(body)
        .send()
        .await
        .map_err(|err| remote("UploadPart", &format!("{key} (part {})", part.number), &err))?;
    Ok(CompletedPart::builder()
        .part_number(part.number)
        .set_e_tag(output.e_tag().map(str::to_owned))
        .set_checksum_crc32_c(output.checksum_crc32_c().map(str::to_owned))
        .build())
}

async fn complete(target: &Target, parts: Vec<CompletedPart>) -> Result<(), StorageError> {
    target
        .client
        .complete_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(&target.upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(|err| remote("CompleteMultipartUpload", &target.key, &err))?;
    Ok(())
}

/// Aborts the upload, deleting its stored parts; a failure is only logged,
/// since the caller is already reporting the error that led here.
async fn abort(target: &Target) {
    let result = target
        .client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(&target.key)
        .upload_id(&target.upload_id)
        .send()
        .await;
    if let Err(err) = result {
        tracing::warn!(
            key = %target.key,
            upload_id = %target.upload_id,
            error = %remote("AbortMultipartUpload", &target.key, &err),
            "parts of a failed multipart upload may remain in the bucket"
        );
    }
}

/// Aborts the upload in the background if the upload future is dropped
/// before it finished or aborted it itself.
struct AbortOnDrop(Option<Target>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(target) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { abort(&target).await });
        }
    }
}
