//! `usage --tenant T [--json]`: what a tenant stores now, and what its last
//! garbage collection found live, reclaimable and referenced per plan and
//! agent (the same figures and JSON as the operator API's `/usage`).

use std::fmt::Write as _;

use super::admin::{open, tenant_id};
use super::plans::in_tenant;
use super::table;
use crate::configuration::Settings;
use crate::operations::usage::{self, Usage};
use crate::views::usage_json;

/// Prints the tenant's usage: a few lines and a table, or JSON.
///
/// # Errors
///
/// An unknown tenant, or a database failure.
pub async fn show(settings: &Settings, tenant_name: &str, as_json: bool) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let found = usage::usage(&db, tenant).await;
    db.close().await;
    let found = found.map_err(in_tenant(tenant_name))?;
    if as_json {
        return Ok(format!("{:#}\n", usage_json(&found)));
    }
    Ok(human(&found))
}

/// The human form: stored now, then the last run's figures and groups.
fn human(usage: &Usage) -> String {
    let stored = &usage.stored;
    let mut out = format!(
        "stored now: {} bytes in {} packs ({} blobs)\n",
        stored.bytes, stored.packs, stored.blobs
    );
    let Some(last) = &usage.last_gc else {
        out.push_str("referenced and reclaimable bytes: never computed — run gc\n");
        return out;
    };
    let at_mark = last.dead_pack_bytes + last.partly_dead_bytes;
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "as of the last gc ({}):\n\
         live (deduplicated): {} bytes in {} blobs\n\
         reclaimable at its mark: {at_mark} bytes ({} in {} wholly dead packs, {} in partly \
         dead packs); it reclaimed {}, {} remain",
        last.computed_at.format("%Y-%m-%d %H:%M:%S UTC"),
        last.live_bytes,
        last.live_blobs,
        last.dead_pack_bytes,
        last.dead_packs,
        last.partly_dead_bytes,
        last.reclaimed_bytes,
        at_mark.saturating_sub(last.reclaimed_bytes),
    );
    let rows: Vec<Vec<String>> = usage
        .named_groups()
        .map(|(group, names)| {
            let plan = match (&names.plan, group.group.plan) {
                (Some(name), _) => name.clone(),
                (None, Some(id)) => format!("(deleted plan {})", &id.to_hex()[..12]),
                (None, None) => "no plan".to_owned(),
            };
            vec![
                plan,
                names.agent.clone(),
                group.snapshots.to_string(),
                group.referenced_bytes.to_string(),
                group.referenced_blobs.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["PLAN", "AGENT", "SNAPSHOTS", "REFERENCED BYTES", "BLOBS"],
        &rows,
    ));
    out
}
