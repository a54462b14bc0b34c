//! A fault-injecting HTTP/1.1 proxy on loopback, put between the S3 client
//! and the real test S3 server.
//!
//! Each request is read whole, classified as an S3 operation, and either
//! answered with an injected S3 error (a proper XML error body, as S3 sends)
//! or forwarded unchanged — Host header included, so signatures still match —
//! over a fresh upstream connection. Every request is recorded, so tests can
//! count attempts and find the multipart upload ids the client used.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// The S3 operations the tests tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    Other,
}

/// An error answer: status and S3 error code.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
}

pub const SLOW_DOWN: Fault = Fault {
    status: 503,
    code: "SlowDown",
};
pub const INTERNAL_ERROR: Fault = Fault {
    status: 500,
    code: "InternalError",
};

/// Which requests get a fault.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// The first `n` requests of operation `op`; later ones pass.
    FirstOf { op: Op, n: usize, fault: Fault },
    /// Every request of operation `op`.
    Every { op: Op, fault: Fault },
    /// Every UploadPart of part number `part`, answered only once `after`
    /// other parts were stored upstream (so there are parts to clean up).
    Part {
        part: u32,
        after: usize,
        fault: Fault,
    },
    /// Forwards requests of `op` with one byte in the middle of the body
    /// flipped, as a bad link might.
    Corrupt { op: Op },
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub op: Op,
    /// `uploadId` from the query, if any.
    pub upload_id: Option<String>,
    /// The status injected, or `None` when forwarded.
    pub injected: Option<u16>,
    /// The status the upstream answered, when forwarded.
    pub answered: Option<u16>,
    /// Whether the request carried a CRC32C of its body (as a header, or as
    /// a trailer after the body).
    pub crc32c: bool,
}

#[derive(Debug)]
struct State {
    upstream: SocketAddr,
    rule: Rule,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; stops when dropped (its accept task is aborted).
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`
    /// (an `http://host:port` endpoint).
    pub async fn start(upstream: &str, rule: Rule) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the test S3 endpoint is http://<ip>:<port>");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream,
            rule,
            seen: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            state,
            task,
        }
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests of `op` were seen.
    pub fn count(&self, op: Op) -> usize {
        self.seen().iter().filter(|s| s.op == op).count()
    }
}

fn classify(method: &hyper::Method, query: &str) -> Op {
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair == name || pair.starts_with(&format!("{name}=")))
    };
    match *method {
        hyper::Method::PUT if has("partNumber") && has("uploadId") => Op::UploadPart,
        hyper::Method::PUT if !has("uploadId") => Op::PutObject,
        hyper::Method::POST if has("uploads") => Op::CreateMultipartUpload,
        hyper::Method::POST if has("uploadId") => Op::CompleteMultipartUpload,
        hyper::Method::DELETE if has("uploadId") => Op::AbortMultipartUpload,
        _ => Op::Other,
    }
}

fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// Waits until `count` UploadParts were stored upstream (30 s at most).
async fn parts_stored(state: &State, count: usize) {
    for _ in 0..3000 {
        let stored = state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.op == Op::UploadPart && s.answered == Some(200))
            .count();
        if stored >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "the proxy never saw {count} parts stored: {:?}",
        state.seen.lock().unwrap()
    );
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read the whole body first, as a real server would before answering.
    let mut body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            return Ok(plain(
                502,
                &format!("proxy: reading the request failed: {err}"),
            ));
        }
    };
    let query = parts.uri.query().unwrap_or("").to_owned();
    let op = classify(&parts.method, &query);
    let part = query_value(&query, "partNumber").and_then(|n| n.parse::<u32>().ok());
    let fault = {
        let mut seen = state.seen.lock().expect("the proxy's log is intact");
        let earlier = seen.iter().filter(|s| s.op == op).count();
        let fault = match state.rule {
            Rule::FirstOf {
                op: target,
                n,
                fault,
            } if target == op && earlier < n => Some(fault),
            Rule::Every { op: target, fault } if target == op => Some(fault),
            Rule::Part {
                part: target,
                fault,
                ..
            } if op == Op::UploadPart && part == Some(target) => Some(fault),
            _ => None,
        };
        seen.push(Seen {
            op,
            upload_id: query_value(&query, "uploadId"),
            injected: fault.map(|f| f.status),
            answered: None,
            crc32c: parts.headers.contains_key("x-amz-checksum-crc32c")
                || parts
                    .headers
                    .get("x-amz-trailer")
                    .is_some_and(|v| v == "x-amz-checksum-crc32c"),
        });
        (fault, seen.len() - 1)
    };
    let (fault, index) = fault;
    if let (Some(_), Rule::Part { after, .. }) = (fault, state.rule) {
        parts_stored(&state, after).await;
    }
    if let Rule::Corrupt { op: target } = state.rule
        && target == op
        && !body.is_empty()
    {
        let mut bytes = body.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        body = Bytes::from(bytes);
    }
    if let Some(fault) = fault {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code>\
             <Message>injected by the test proxy</Message><RequestId>fault-proxy</RequestId></Error>",
            fault.code
        );
        let mut response = Response::new(Full::new(Bytes::from(xml)));
        *response.status_mut() = StatusCode::from_u16(fault.status).unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/xml".parse().unwrap());
        return Ok(response);
    }
    let response = forward(state.upstream, Request::from_parts(parts, Full::new(body)))
        .await
        .unwrap_or_else(|err| plain(502, &format!("proxy: forwarding failed: {err}")));
    state.seen.lock().unwrap()[index].answered = Some(response.status().as_u16());
    Ok(response)
}

async fn forward(
    upstream: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn plain(status: u16, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}
