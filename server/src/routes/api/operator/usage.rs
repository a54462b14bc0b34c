//! `GET /api/v1/usage`: the key's tenant's storage usage, as `stowage-server
//! usage --json` prints it. Reading it needs any key, as the retention
//! preview does: it changes nothing.

use actix_web::{HttpResponse, web};

use crate::auth::api_key::AuthenticatedOperator;
use crate::db::Database;
use crate::operations::usage;
use crate::routes::api::Failure;
use crate::views::usage_json;

/// Bytes stored now, and what the last garbage collection recorded.
///
/// # Errors
///
/// 401 without a valid key; 500 when the database fails.
pub async fn show(
    db: web::Data<Database>,
    who: AuthenticatedOperator,
) -> Result<HttpResponse, Failure> {
    let found = usage::usage(&db, who.tenant).await?;
    Ok(HttpResponse::Ok().json(usage_json(&found)))
}
