//! The agent's side of the `/api/v1` contract: one typed method per
//! endpoint (see `docs/API.md`), each with the same error handling and the
//! same retry policy, so no command talks HTTP by hand.
//!
//! Every call is idempotent on the server (the same pack id, the same
//! snapshot record, the same locate), so a call that failed in a retryable
//! way — no connection, a 5xx, a 429, an error the server marks retryable —
//! is simply sent again, up to [`RetryPolicy::attempts`] times with jittered
//! exponential backoff, honouring `Retry-After`. Everything else comes back
//! at once as a [`CallError`] naming the request.

mod error;
mod retry;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stowage_protocol::api::{
    API_PREFIX, AgentFacts, ApiError, ClaimJobRequest, ClaimedJob, CommitSnapshotRequest,
    CommitSnapshotResponse, EnrollRequest, EnrollResponse, JobFinish, JobLease, JobProgress,
    LocateBlobsRequest, LocateBlobsResponse, MissingBlobsRequest, MissingBlobsResponse,
    OpenUploadSessionRequest, PackUploadResponse, SnapshotList, SnapshotListItem, TenantKeyBundle,
    UploadSession,
};
use stowage_protocol::ids::{BlobId, JobId, PackId, PlanId, SnapshotId, UploadSessionId};
use stowage_protocol::snapshot::SnapshotRecord;
use url::Url;
use zeroize::Zeroizing;

pub use error::CallError;
pub use retry::RetryPolicy;

/// A connection to one server, with or without an agent credential.
///
/// Cheap to clone (the HTTP client and credential are shared), and safe to
/// use from many tasks at once: uploads and downloads run in parallel on it.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: Url,
    credential: Option<Arc<Zeroizing<String>>>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base.as_str())
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// A page request for [`ServerClient::list_snapshots`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotPage {
    /// Only snapshots of this plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanId>,
    /// At most this many (1–500; the server's default is 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only snapshots older than this one (the previous page's `next_before`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<SnapshotId>,
}

impl ServerClient {
    /// A client for `server` (its base URL, e.g. `https://backup.example.com`)
    /// over `http`, which [`crate::transport::build_client`] built.
    pub fn new(http: reqwest::Client, server: &Url) -> Self {
        let mut base = server.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Self {
            http,
            base,
            credential: None,
            retry: RetryPolicy::default(),
        }
    }

    /// The same client, sending `credential` as its bearer token.
    #[must_use]
    pub fn with_credential(mut self, credential: Zeroizing<String>) -> Self {
        self.credential = Some(Arc::new(credential));
        self
    }

    /// The same client with another retry policy (tests use a quick one).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The server's base URL.
    pub fn server(&self) -> &Url {
        &self.base
    }

    /// `POST /agents/enroll`: trades a one-time token for a credential.
    ///
    /// # Errors
    ///
    /// The server's refusal (a used or expired token, a taken name) or no answer.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, CallError> {
        self.json(Method::POST, "agents/enroll", Some(request))
            .await
    }

    /// `PUT /tenant/keys`: stores the tenant's wrapped keys (first agent only).
    ///
    /// # Errors
    ///
    /// 409 `tenant_keys_exist` when different keys are already stored.
    pub async fn put_tenant_keys(&self, bundle: &TenantKeyBundle) -> Result<(), CallError> {
        self.send(Method::PUT, "tenant/keys", |r| r.json(bundle))
            .await
            .map(drop)
    }

    /// `GET /tenant/keys`: the wrapped keys, or `None` before the first agent stored them.
    ///
    /// # Errors
    ///
    /// Any refusal other than `tenant_keys_missing`, or no answer.
    pub async fn tenant_keys(&self) -> Result<Option<TenantKeyBundle>, CallError> {
        match self.json::<(), _>(Method::GET, "tenant/keys", None).await {
            Ok(bundle) => Ok(Some(bundle)),
            Err(error)
                if error.code() == Some(stowage_protocol::api::codes::TENANT_KEYS_MISSING) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// `POST /uploads`: opens an upload session (a lease protecting blobs).
    ///
    /// # Errors
    ///
    /// The server's refusal or no answer.
    pub async fn open_session(&self, plan: Option<PlanId>) -> Result<UploadSession, CallError> {
        self.json(
            Method::POST,
            "uploads",
            Some(&OpenUploadSessionRequest { plan }),
        )
        .await
    }

    /// `POST /jobs/claim`: claims this agent's oldest queued job, waiting
    /// up to `wait_seconds` for one; `None` when none came in time. `facts`,
    /// when given, replace what the server knows about this agent's host.
    ///
    /// # Errors
    ///
    /// The server's refusal or no answer.
    pub async fn claim_job(
        &self,
        wait_seconds: u32,
        facts: Option<AgentFacts>,
    ) -> Result<Option<ClaimedJob>, CallError> {
        let what = "POST jobs/claim";
        let response = self
            .send(Method::POST, "jobs/claim", |r| {
                r.json(&ClaimJobRequest {
                    wait_seconds,
                    facts: facts.clone(),
                })
            })
            .await?;
        if response.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(what, response).await.map(Some)
    }

    /// `POST /jobs/{job}/progress`: reports progress, renewing the lease.
    ///
    /// # Errors
    ///
    /// 404 when the job is no longer this agent's running job (stop it),
    /// another refusal, or no answer.
    pub async fn job_progress(
        &self,
        job: &JobId,
        progress: JobProgress,
    ) -> Result<JobLease, CallError> {
        self.json(
            Method::POST,
            &format!("jobs/{job}/progress"),
            Some(&progress),
        )
        .await
    }

    /// `POST /jobs/{job}/finish`: ends the job with its outcome and log.
    ///
    /// # Errors
    ///
    /// As [`ServerClient::job_progress`].
    pub async fn finish_job(&self, job: &JobId, finish: &JobFinish) -> Result<(), CallError> {
        self.send(Method::POST, &format!("jobs/{job}/finish"), |r| {
            r.json(finish)
        })
        .await
        .map(drop)
    }

    /// `POST /uploads/{session}/missing`: which of `ids` (at most
    /// [`MAX_IDS_PER_QUERY`](stowage_protocol::api::MAX_IDS_PER_QUERY)) must
    /// be uploaded; the others are now leased to the session.
    ///
    /// # Errors
    ///
    /// 409 `session_expired`, another refusal, or no answer.
    pub async fn missing(
        &self,
        session: &UploadSessionId,
        ids: Vec<BlobId>,
    ) -> Result<Vec<BlobId>, CallError> {
        let response: MissingBlobsResponse = self
            .json(
                Method::POST,
                &format!("uploads/{session}/missing"),
                Some(&MissingBlobsRequest { ids }),
            )
            .await?;
        Ok(response.missing)
    }

    /// `PUT /uploads/{session}/packs/{pack}`: uploads one pack. A retry of
    /// a pack the server already holds is answered `already_present`.
    ///
    /// # Errors
    ///
    /// 422 `pack_rejected` naming the problem, 409 `session_expired`, 413
    /// for a pack over the limit, or no answer.
    pub async fn put_pack(
        &self,
        session: &UploadSessionId,
        pack: &PackId,
        bytes: Bytes,
    ) -> Result<PackUploadResponse, CallError> {
        let response = self
            .send(
                Method::PUT,
                &format!("uploads/{session}/packs/{pack}"),
                |r| {
                    r.header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(bytes.clone())
                },
            )
            .await?;
        decode(&format!("PUT uploads/{session}/packs/{pack}"), response).await
    }

    /// `POST /uploads/{session}/commit`: makes the snapshot visible.
    ///
    /// # Errors
    ///
    /// 409 `missing_blobs` ([`CallError::missing_blobs`] lists them), 409
    /// `session_expired`, 400 for a record the server refuses, or no answer.
    pub async fn commit(
        &self,
        session: &UploadSessionId,
        record: &SnapshotRecord,
    ) -> Result<CommitSnapshotResponse, CallError> {
        self.json(
            Method::POST,
            &format!("uploads/{session}/commit"),
            Some(&CommitSnapshotRequest {
                record: record.clone(),
            }),
        )
        .await
    }

    /// `GET /snapshots`: one page, newest first.
    ///
    /// # Errors
    ///
    /// The server's refusal or no answer.
    pub async fn list_snapshots(&self, page: &SnapshotPage) -> Result<SnapshotList, CallError> {
        let response = self
            .send(Method::GET, "snapshots", |r| r.query(page))
            .await?;
        decode("GET snapshots", response).await
    }

    /// `GET /snapshots/{id}`.
    ///
    /// # Errors
    ///
    /// 404 for an unknown id, or no answer.
    pub async fn snapshot(&self, id: &SnapshotId) -> Result<SnapshotListItem, CallError> {
        self.json::<(), _>(Method::GET, &format!("snapshots/{id}"), None)
            .await
    }

    /// `GET /trees/{id}`: the sealed tree blob exactly as uploaded.
    ///
    /// # Errors
    ///
    /// 404 for a data blob or an unknown id, or no answer.
    pub async fn tree(&self, id: &BlobId) -> Result<Bytes, CallError> {
        let what = format!("GET trees/{id}");
        let response = self
            .send(Method::GET, &format!("trees/{id}"), |r| r)
            .await?;
        body_bytes(&what, response).await
    }

    /// `POST /blobs/locate`: where each of `ids` lies.
    ///
    /// # Errors
    ///
    /// The server's refusal or no answer.
    pub async fn locate(&self, ids: Vec<BlobId>) -> Result<LocateBlobsResponse, CallError> {
        self.json(
            Method::POST,
            "blobs/locate",
            Some(&LocateBlobsRequest { ids }),
        )
        .await
    }

    /// `GET /packs/{pack}` with `Range: bytes=start-(end-1)`: exactly the
    /// bytes `range` of the pack.
    ///
    /// # Errors
    ///
    /// 404 for an unknown pack, 416 for a range past its end, a short or
    /// mislabelled answer, or no answer.
    pub async fn pack_range(&self, pack: &PackId, range: Range<u64>) -> Result<Bytes, CallError> {
        let what = format!("GET packs/{pack} bytes {}..{}", range.start, range.end);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let value = format!("bytes={}-{}", range.start, range.end - 1);
        let response = self
            .send(Method::GET, &format!("packs/{pack}"), |r| {
                r.header(header::RANGE, value.clone())
            })
            .await?;
        let status = response.status();
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(CallError::Protocol {
                what,
                status: status.as_u16(),
                problem: "a range request was not answered with 206 Partial Content".into(),
            });
        }
        body_exact(&what, response, range.end - range.start).await
    }

    /// `GET /packs/{pack}`: the whole pack.
    ///
    /// # Errors
    ///
    /// 404 for an unknown pack, or no answer.
    pub async fn pack(&self, pack: &PackId) -> Result<Bytes, CallError> {
        let what = format!("GET packs/{pack}");
        let response = self
            .send(Method::GET, &format!("packs/{pack}"), |r| r)
            .await?;
        body_bytes(&what, response).await
    }

    /// Sends a JSON request (or none) and decodes a JSON answer.
    async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, CallError> {
        let what = format!("{method} {path}");
        let response = self
            .send(method, path, |r| match body {
                Some(body) => r.json(body),
                None => r,
            })
            .await?;
        decode(&what, response).await
    }

    /// Sends the request `build` makes, retrying what may succeed on a
    /// second try; returns the first 2xx response.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        let what = format!("{method} {path}");
        let url = self
            .base
            .join(&format!("{}/{path}", API_PREFIX.trim_start_matches('/')))
            .map_err(|error| CallError::Protocol {
                what: what.clone(),
                status: 0,
                problem: format!("the path cannot be joined to the server URL - {error}"),
            })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(credential) = &self.credential {
                request = request.bearer_auth(credential.as_str());
            }
            let outcome = match build(request).send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let retry_after = retry::retry_after(&response);
                    (failure(&what, response).await, retry_after)
                }
                Err(source) => (
                    CallError::Transport {
                        what: what.clone(),
                        source,
                    },
                    None,
                ),
            };
            let (error, retry_after) = outcome;
            if !error.is_retryable() || attempt >= self.retry.attempts {
                return Err(error);
            }
            tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
        }
    }
}

/// Turns a non-2xx response into a [`CallError`], reading its [`ApiError`] body.
async fn failure(what: &str, response: reqwest::Response) -> CallError {
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => match serde_json::from_slice::<ApiError>(&body) {
            Ok(error) => CallError::Api {
                what: what.to_owned(),
                status,
                error,
            },
            Err(_) => CallError::Protocol {
                what: what.to_owned(),
                status,
                problem: format!(
                    "not an API error body: {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            },
        },
        Err(source) => CallError::Transport {
            what: what.to_owned(),
            source,
        },
    }
}

async fn decode<T: DeserializeOwned>(
    what: &str,
    response: reqwest::Response,
) -> Result<T, CallError> {
    let status = response.status().as_u16();
    let body = body_bytes(what, response).await?;
    serde_json::from_slice(&body).map_err(|error| CallError::Protocol {
        what: what.to_owned(),
        status,
        problem: error.to_string(),
    })
}

/// A body that must be exactly `expected` bytes long, read into one buffer
/// of that size: no growing and copying (a restore holds many such bodies
/// at once, so a doubling buffer would double its memory), and a server
/// sending more than it should is cut off at once.
async fn body_exact(
    what: &str,
    mut response: reqwest::Response,
    expected: u64,
) -> Result<Bytes, CallError> {
    let status = response.status().as_u16();
    let wrong_length = |arrived: u64, what: &str| CallError::Protocol {
        what: what.to_owned(),
        status,
        problem: format!("{arrived} bytes arrived instead of {expected}"),
    };
    let capacity = usize::try_from(expected).map_err(|_| wrong_length(0, what))?;
    let mut body = bytes::BytesMut::with_capacity(capacity);
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|source| CallError::Transport {
                what: what.to_owned(),
                source,
            })?;
        let Some(chunk) = chunk else { break };
        if body.len() + chunk.len() > capacity {
            return Err(wrong_length((body.len() + chunk.len()) as u64, what));
        }
        body.extend_from_slice(&chunk);
    }
    if body.len() != capacity {
        return Err(wrong_length(body.len() as u64, what));
    }
    Ok(body.freeze())
}

async fn body_bytes(what: &str, response: reqwest::Response) -> Result<Bytes, CallError> {
    response
        .bytes()
        .await
        .map_err(|source| CallError::Transport {
            what: what.to_owned(),
            source,
        })
}
