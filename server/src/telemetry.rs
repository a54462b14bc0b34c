//! Logging: a `tracing` subscriber and the request-logging middleware.
//!
//! The filter comes from `STOWAGE_LOG` (default `info`). Tests build the
//! subscriber with a sink of their choice (`std::io::sink` unless `TEST_LOG`
//! is set), as in zero-to-production. Each request is logged once when it
//! completes, with its route template (`/api/tenants/{id}`, never the raw
//! path, which may carry ids and tokens), status and duration; health probes
//! log at DEBUG so a load balancer polling every second does not flood the log.

use std::io::IsTerminal;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing::subscriber::SetGlobalDefaultError;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Routes whose requests are logged at DEBUG.
const PROBE_ROUTES: [&str; 2] = ["/healthz", "/readyz"];

/// A subscriber writing human-readable lines to `sink`, filtered by `filter`
/// (an `EnvFilter` directive; an invalid one falls back to `info`).
pub fn get_subscriber<Sink>(filter: &str, sink: Sink) -> impl tracing::Subscriber + Send + Sync
where
    Sink: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(sink)
        .with_ansi(std::io::stdout().is_terminal())
        .finish()
}

/// Installs `subscriber` for the whole process.
///
/// # Errors
///
/// Fails when a global subscriber is already installed.
pub fn init_subscriber(
    subscriber: impl tracing::Subscriber + Send + Sync,
) -> Result<(), SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(subscriber)
}

/// Middleware: logs each request with its route template, status and duration.
///
/// # Errors
///
/// Passes on errors of the inner service unchanged.
pub async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "(no route)".to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!("request", %method, route = %route);
    let started = Instant::now();
    let response = next.call(request).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let millis = started.elapsed().as_millis();
    let _entered = span.enter();
    if response.status().is_server_error() {
        tracing::warn!(status, millis, "request failed");
    } else if PROBE_ROUTES.contains(&route.as_str()) {
        tracing::debug!(status, millis, "request served");
    } else {
        tracing::info!(status, millis, "request served");
    }
    Ok(response)
}
