//! `/healthz` (liveness) and `/readyz` (readiness).
//!
//! Liveness says only that the process answers: restarting it would not help
//! with a database outage, so `/healthz` checks nothing else. Readiness
//! checks the database and the object store, each with a time limit, and
//! answers 503 naming what is down, so a load balancer sends traffic elsewhere.
//! The reason stays in the log; the response says only "down".

use std::future::Future;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::db::Database;
use crate::storage::ObjectStore;

/// Longest a single readiness check may take before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Status of each dependency, `"ok"` or `"down"`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// The relational database.
    pub database: &'static str,
    /// The object store holding packs.
    pub object_store: &'static str,
}

/// `GET /healthz`: 200 "ok" while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// `GET /readyz`: 200 when the database and object store answer, else 503.
pub async fn readyz(db: web::Data<Database>, store: web::Data<dyn ObjectStore>) -> HttpResponse {
    let (database, object_store) = tokio::join!(
        check("database", db.ping()),
        check("object store", store.check()),
    );
    let readiness = Readiness {
        database,
        object_store,
    };
    if database == "ok" && object_store == "ok" {
        HttpResponse::Ok().json(readiness)
    } else {
        HttpResponse::ServiceUnavailable().json(readiness)
    }
}

async fn check<E: std::fmt::Display>(
    name: &str,
    probe: impl Future<Output = Result<(), E>>,
) -> &'static str {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => "ok",
        Ok(Err(err)) => {
            tracing::warn!("readiness: the {name} is down - {err}");
            "down"
        }
        Err(_) => {
            tracing::warn!("readiness: the {name} did not answer within {CHECK_TIMEOUT:?}");
            "down"
        }
    }
}
