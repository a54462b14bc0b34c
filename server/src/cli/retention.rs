//! `retention preview|apply` and `snapshot pin|unpin|forget`: plans'
//! retention policies and legal holds from the command line (the same
//! operations as the operator API's `/retention` and `/snapshots/{id}`).

use super::admin::{CLI_ACTOR, open, tenant_id};
use super::plans::in_tenant;
use super::table;
use crate::configuration::Settings;
use crate::operations::retention;
use crate::views::decisions_json;

/// Prints what each plan's policy keeps and forgets, and why.
///
/// # Errors
///
/// An unknown tenant or plan, or a database failure.
pub async fn preview(
    settings: &Settings,
    tenant_name: &str,
    plan: Option<&str>,
    as_json: bool,
) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let decided = retention::preview(&db, tenant, plan).await;
    db.close().await;
    let decided = decided.map_err(in_tenant(tenant_name))?;
    if as_json {
        return Ok(format!("{}\n", decisions_json(&decided)));
    }
    let rows: Vec<Vec<String>> = decided
        .iter()
        .flat_map(|plan| {
            plan.decisions.iter().map(|decision| {
                vec![
                    plan.plan.clone(),
                    plan.agent_name.clone(),
                    decision.id.to_hex()[..12].to_owned(),
                    decision.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                    if decision.keep { "keep" } else { "forget" }.to_owned(),
                    decision
                        .reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ]
            })
        })
        .collect();
    Ok(table::render(
        &["PLAN", "AGENT", "SNAPSHOT", "TIME", "DECISION", "WHY"],
        &rows,
    ))
}

/// Applies the policies; returns a summary line per forgotten snapshot.
///
/// # Errors
///
/// As [`preview`].
pub async fn apply(
    settings: &Settings,
    tenant_name: &str,
    plan: Option<&str>,
) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let applied = retention::apply(&db, tenant, CLI_ACTOR, plan).await;
    db.close().await;
    let applied = applied.map_err(in_tenant(tenant_name))?;
    eprintln!(
        "forgot {} snapshot(s), kept {}; run `stowage-server gc` to reclaim their data",
        applied.forgotten.len(),
        applied.kept
    );
    let mut ids = String::new();
    for id in &applied.forgotten {
        ids.push_str(&id.to_hex());
        ids.push('\n');
    }
    Ok(ids)
}

/// What `snapshot …` does to one snapshot.
#[derive(Debug, Clone, Copy)]
pub enum SnapshotAction<'a> {
    /// Hold it, with a reason.
    Pin(&'a str),
    /// Release the hold.
    Unpin,
    /// Forget it now.
    Forget,
}

/// Pins, unpins or forgets one snapshot; returns what happened, as a sentence.
///
/// # Errors
///
/// A malformed or unknown snapshot, a pinned one to forget, or a database failure.
pub async fn snapshot(
    settings: &Settings,
    tenant_name: &str,
    id: &str,
    action: SnapshotAction<'_>,
) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let done = match action {
        SnapshotAction::Pin(reason) => retention::pin(&db, tenant, CLI_ACTOR, id, reason)
            .await
            .map(|new| if new { "pinned" } else { "was pinned already" }),
        SnapshotAction::Unpin => retention::unpin(&db, tenant, CLI_ACTOR, id)
            .await
            .map(|had| if had { "unpinned" } else { "was not pinned" }),
        SnapshotAction::Forget => retention::forget_one(&db, tenant, CLI_ACTOR, id)
            .await
            .map(|()| "forgotten; run `stowage-server gc` to reclaim its data"),
    };
    db.close().await;
    let done = done.map_err(in_tenant(tenant_name))?;
    Ok(format!("snapshot {} {done}", id.trim()))
}
