//! The S3 object store, for any S3-compatible service (AWS, MinIO, s3s, …).
//!
//! - [`client`]: how the SDK client is built — explicit credentials and
//!   region, retries with backoff and jitter, timeouts, upload checksums.
//! - [`multipart`]: files over [`MULTIPART_THRESHOLD`] go up in parts, with
//!   bounded concurrency, and are aborted on failure.
//!
//! Every write is all-or-nothing as S3 makes it: an object appears only when
//! its PutObject or CompleteMultipartUpload succeeds.

mod client;
mod multipart;

use std::ops::Range;
use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, ChecksumAlgorithm, CreateBucketConfiguration};
use bytes::Bytes;

use super::{ObjectKey, ObjectMeta, ObjectStore, StorageError, StoreFuture, check_prefix};
use crate::configuration::S3Settings;

pub use client::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, INITIAL_BACKOFF, MAX_ATTEMPTS, MAX_BACKOFF, READ_TIMEOUT,
};
pub use multipart::{MIN_PART_SIZE, MULTIPART_THRESHOLD, PART_CONCURRENCY, PART_SIZE};

/// An object store in one bucket of an S3-compatible service.
#[derive(Debug, Clone)]
pub struct S3Store {
    /// The SDK client, cheap to clone and safe to share.
    client: Client,
    /// Every object of every tenant lives in this bucket.
    bucket: String,
    /// Needed when the bucket has to be created outside us-east-1.
    region: String,
    /// Files larger than this are uploaded in parts.
    multipart_threshold: u64,
    /// Size of each part but the last.
    part_size: u64,
}

impl S3Store {
    /// Builds a client from explicit settings; makes no request yet.
    pub fn new(settings: &S3Settings) -> Self {
        Self {
            client: client::build(settings),
            bucket: settings.bucket.clone(),
            region: settings.region.clone(),
            multipart_threshold: MULTIPART_THRESHOLD,
            part_size: PART_SIZE,
        }
    }

    /// Changes when files go up in parts and how large the parts are
    /// (defaults: over [`MULTIPART_THRESHOLD`], in [`PART_SIZE`] parts); for
    /// tuning and for measuring. `u64::MAX` as threshold turns multipart off.
    ///
    /// # Panics
    ///
    /// Panics if `part_size` is below S3's minimum of [`MIN_PART_SIZE`].
    #[must_use]
    pub fn with_multipart(mut self, threshold: u64, part_size: u64) -> Self {
        assert!(
            part_size >= MIN_PART_SIZE,
            "S3 parts must be at least 5 MiB, not {part_size} bytes"
        );
        self.multipart_threshold = threshold;
        self.part_size = part_size;
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists, so a fresh stack (such as the
    /// docker-compose one) works on its first start.
    ///
    /// # Errors
    ///
    /// Fails when the service cannot be reached or refuses to create it.
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(err) if status_of(&err) == Some(404) => {}
            Err(err) => return Err(remote("HeadBucket", &self.bucket, &err)),
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created the S3 bucket");
                Ok(())
            }
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(err) => Err(remote("CreateBucket", &self.bucket, &err)),
        }
    }

    async fn put(&self, key: &ObjectKey, body: ByteStream) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .body(body)
            .send()
            .await
            .map_err(|err| remote("PutObject", key.as_str(), &err))?;
        Ok(())
    }

    async fn read(
        &self,
        key: &ObjectKey,
        range: Option<&Range<u64>>,
    ) -> Result<Bytes, StorageError> {
        let mut request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str());
        if let Some(range) = range {
            if range.start >= range.end {
                return Err(invalid_range(key, range));
            }
            request = request.range(format!("bytes={}-{}", range.start, range.end - 1));
        }
        let output = match request.send().await {
            Ok(output) => output,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(GetObjectError::is_no_such_key) =>
            {
                return Err(StorageError::NotFound { key: key.clone() });
            }
            Err(err) if status_of(&err) == Some(416) => {
                let range = range.expect("only ranged reads answer 416");
                return Err(invalid_range(key, range));
            }
            Err(err) => return Err(remote("GetObject", key.as_str(), &err)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|err| StorageError::Remote {
                operation: "GetObject",
                target: key.as_str().to_owned(),
                message: format!("reading the body failed - {}", DisplayErrorContext(&err)),
            })?;
        Ok(body.into_bytes())
    }
}

impl ObjectStore for S3Store {
    fn put_bytes<'a>(&'a self, key: &'a ObjectKey, data: Bytes) -> StoreFuture<'a, ()> {
        Box::pin(self.put(key, ByteStream::from(data)))
    }

    fn put_file<'a>(&'a self, key: &'a ObjectKey, path: &'a Path) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let unreadable = |action: &str, err: &dyn std::error::Error| StorageError::Remote {
                operation: "PutObject",
                target: key.as_str().to_owned(),
                message: format!(
                    "cannot {action} source file {} - {}",
                    path.display(),
                    DisplayErrorContext(err)
                ),
            };
            let size = tokio::fs::metadata(path)
                .await
                .map_err(|err| unreadable("stat", &err))?
                .len();
            if size > self.multipart_threshold {
                return multipart::upload(
                    &self.client,
                    &self.bucket,
                    key,
                    path,
                    size,
                    self.part_size,
                )
                .await;
            }
            let body = ByteStream::from_path(path)
                .await
                .map_err(|err| unreadable("read", &err))?;
            self.put(key, body).await
        })
    }

    fn get<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Bytes> {
        Box::pin(self.read(key, None))
    }

    fn get_range<'a>(&'a self, key: &'a ObjectKey, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(async move { self.read(key, Some(&range)).await })
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(async move {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .send()
                .await
            {
                Ok(output) => Ok(Some(ObjectMeta {
                    key: key.clone(),
                    size: output
                        .content_length()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                })),
                Err(err) if status_of(&err) == Some(404) => Ok(None),
                Err(err) => Err(remote("HeadObject", key.as_str(), &err)),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(async move {
            check_prefix(prefix)?;
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .into_paginator()
                .send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|err| remote("ListObjectsV2", prefix, &err))?;
                for object in page.contents() {
                    // Keys we did not write (say, by hand) are not ours to list.
                    let Some(key) = object.key().and_then(|k| ObjectKey::parse(k).ok()) else {
                        continue;
                    };
                    let size = object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0);
                    found.push(ObjectMeta { key, size });
                }
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key.as_str())
                .send()
                .await
                .map_err(|err| remote("DeleteObject", key.as_str(), &err))?;
            Ok(())
        })
    }

    fn check(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            // A readiness probe wants the state now, not after retries.
            let once = aws_sdk_s3::Config::builder()
                .retry_config(client::retry_config().with_max_attempts(1));
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .customize()
                .config_override(once)
                .send()
                .await
                .map_err(|err| remote("HeadBucket", &self.bucket, &err))?;
            Ok(())
        })
    }
}

fn status_of<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

fn invalid_range(key: &ObjectKey, range: &Range<u64>) -> StorageError {
    StorageError::InvalidRange {
        key: key.clone(),
        start: range.start,
        end: range.end,
    }
}

fn remote<E>(operation: &'static str, target: &str, err: &SdkError<E, HttpResponse>) -> StorageError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let code = err.code().map(|c| format!("{c}: ")).unwrap_or_default();
    let retried = if was_retried(err) {
        format!(" (retried with backoff, {MAX_ATTEMPTS} attempts at most)")
    } else {
        String::new()
    };
    StorageError::Remote {
        operation,
        target: target.to_owned(),
        message: format!("{code}{}{retried}", DisplayErrorContext(err)),
    }
}

/// Whether the client's retry policy treats `err` as transient, so the
/// error reached the caller only after the retries ran out.
fn was_retried<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            status_of(err).is_some_and(|status| status >= 500 || status == 429)
                || err.code().is_some_and(|code| {
                    code == "SlowDown" || code == "RequestTimeout" || code.contains("Throttl")
                })
        }
        _ => false,
    }
}
