//! `agents`: a tenant's agents with their presence — online or offline
//! (silent longer than `agents.offline_after`), version, OS, host and the
//! free space of their sources.

use chrono::Utc;

use super::admin::{open, tenant_id};
use super::table;
use crate::configuration::Settings;
use crate::db::agent_presence;
use crate::views::presence_json;

/// Prints the tenant's agents.
///
/// # Errors
///
/// An unknown tenant or a database failure.
pub async fn list(settings: &Settings, tenant_name: &str, as_json: bool) -> anyhow::Result<String> {
    let db = open(settings).await?;
    let tenant = tenant_id(&db, tenant_name).await?;
    let agents = agent_presence::list(&db, tenant).await?;
    db.close().await;
    let silence = settings.agents.offline_after;
    let now = Utc::now();
    if as_json {
        let array: Vec<_> = agents
            .iter()
            .map(|agent| presence_json(agent, agent.state(now, silence).as_str()))
            .collect();
        return Ok(format!("{}\n", serde_json::Value::from(array)));
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|agent| {
            vec![
                agent.name.clone(),
                agent.state(now, silence).as_str().to_owned(),
                agent
                    .last_seen_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
                agent.version.clone().unwrap_or_default(),
                agent.hostname.clone(),
                agent.os.clone().unwrap_or_default(),
                agent
                    .filesystems
                    .iter()
                    .map(|fs| format!("{} {} free", fs.path, gib(fs.free_bytes)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    Ok(table::render(
        &[
            "NAME",
            "STATE",
            "LAST SEEN",
            "VERSION",
            "HOST",
            "OS",
            "FREE SPACE",
        ],
        &rows,
    ))
}

fn gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let gib = bytes as f64 / f64::from(1u32 << 30);
    format!("{gib:.1} GiB")
}
