//! Building the SDK client, with every behaviour that matters set here
//! explicitly rather than left to SDK defaults that change between releases.
//!
//! - **Credentials and region** come from [`S3Settings`] alone (the
//!   configuration layer fills them from `STOWAGE_S3_*`, or from
//!   `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`). No provider chain runs, so
//!   the SDK never reads `~/.aws`, never asks an SSO portal and never probes
//!   the instance-metadata address.
//! - **Retries**: the SDK's standard strategy, [`MAX_ATTEMPTS`] attempts in
//!   all. Before retry *n* it waits a random time below
//!   `INITIAL_BACKOFF × 2ⁿ⁻¹` (capped at [`MAX_BACKOFF`]) — exponential
//!   backoff with full jitter, so many writers hitting a throttled bucket
//!   spread out instead of retrying in lockstep. Retried: 5xx answers,
//!   throttling codes (`SlowDown`, `Throttling`, `RequestLimitExceeded`, …),
//!   `RequestTimeout`, connection failures and timeouts. Other 4xx answers are
//!   final. A client-wide retry quota (token bucket) stops retrying when most
//!   requests fail, so a dead store is reported instead of hammered. Upload
//!   bodies are files or in-memory bytes, both re-readable, so every request
//!   is retryable.
//! - **Timeouts**: [`CONNECT_TIMEOUT`] to open a connection (a dead endpoint
//!   fails fast), [`READ_TIMEOUT`] of silence while awaiting a response, and
//!   [`ATTEMPT_TIMEOUT`] for one whole attempt, sized so the largest single
//!   request (a 32 MiB body) still fits on a slow uplink.
//! - **Checksums**: every upload carries a CRC32C of its body (PutObject and
//!   each UploadPart; computed by the SDK while streaming and sent as a
//!   trailer), so the store refuses a body corrupted in transit with
//!   `BadDigest` instead of storing it. Responses that carry a checksum (whole
//!   objects written with one) are checked on download too.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use secrecy::ExposeSecret;

use crate::configuration::S3Settings;

/// Attempts per request, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Upper bound of the wait before the first retry; doubles per retry.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Limit on establishing a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence while waiting for response bytes.
pub const READ_TIMEOUT: Duration = Duration::from_mins(1);
/// Limit on one attempt of one request, body upload included: a 32 MiB body
/// needs about 280 KB/s to make it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_mins(2);

/// The retry policy described in the module docs.
pub(super) fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// A client for `settings`; makes no request.
pub(super) fn build(settings: &S3Settings) -> Client {
    let credentials = Credentials::new(
        settings.access_key.clone(),
        settings.secret_key.expose_secret().to_owned(),
        None,
        None,
        "stowage-settings",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .endpoint_url(settings.endpoint.clone())
        .credentials_provider(credentials)
        .force_path_style(settings.path_style)
        .retry_config(retry_config())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .request_checksum_calculation(RequestChecksumCalculation::WhenSupported)
        .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
        .build();
    Client::from_conf(config)
}
