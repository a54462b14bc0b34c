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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use stowage_protocol::ids::{AgentId, PlanId};

    use super::*;
    use crate::db::usage::{GroupUsage, RecordedUsage, SnapshotGroup, Stored};
    use crate::operations::usage::GroupNames;

    fn stored() -> Stored {
        Stored {
            bytes: 500,
            packs: 5,
            blobs: 11,
        }
    }

    fn group(plan: Option<PlanId>, bytes: u64) -> GroupUsage {
        GroupUsage {
            group: SnapshotGroup {
                plan,
                agent: AgentId::from_bytes([1; 16]),
            },
            snapshots: 2,
            referenced_blobs: 3,
            referenced_bytes: bytes,
        }
    }

    #[test]
    fn before_any_gc_only_the_stored_bytes_are_shown() {
        // Arrange
        let usage = Usage {
            stored: stored(),
            last_gc: None,
            groups: Vec::new(),
        };

        // Act
        let text = human(&usage);

        // Assert
        assert_eq!(
            text,
            "stored now: 500 bytes in 5 packs (11 blobs)\n\
             referenced and reclaimable bytes: never computed — run gc\n"
        );
    }

    #[test]
    fn groups_of_no_plan_and_of_a_deleted_plan_are_told_apart() {
        // Arrange
        let deleted = PlanId::from_bytes([0xab; 16]);
        let usage = Usage {
            stored: stored(),
            last_gc: Some(RecordedUsage {
                computed_at: chrono::Utc.with_ymd_and_hms(2026, 12, 8, 3, 0, 0).unwrap(),
                live_blobs: 8,
                live_bytes: 693,
                dead_packs: 1,
                dead_pack_bytes: 100,
                partly_dead_bytes: 13,
                reclaimed_bytes: 100,
                walk_millis: 4,
                groups: vec![group(None, 116), group(Some(deleted), 440)],
            }),
            groups: vec![
                GroupNames {
                    plan: None,
                    agent: "db1".to_owned(),
                },
                GroupNames {
                    plan: None,
                    agent: "db2".to_owned(),
                },
            ],
        };

        // Act
        let text = human(&usage);

        // Assert
        assert!(
            text.contains("as of the last gc (2026-12-08 03:00:00 UTC)"),
            "{text}"
        );
        assert!(
            text.contains("reclaimable at its mark: 113 bytes (100 in 1 wholly dead packs"),
            "{text}"
        );
        assert!(text.contains("it reclaimed 100, 13 remain"), "{text}");
        let rows: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("PLAN"))
            .collect();
        let cells = |row: &str| {
            row.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(cells(rows[1]), ["no", "plan", "db1", "2", "116", "3"]);
        assert_eq!(
            cells(rows[2]),
            ["(deleted", "plan", "abababababab)", "db2", "2", "440", "3"]
        );
    }
}
