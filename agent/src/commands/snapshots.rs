//! `stowage snapshots`: this host's snapshots (or another's, or all),
//! newest first, as a table or JSON.

use std::fmt::Write as _;

use stowage_protocol::api::SnapshotListItem;

use crate::cli::{Global, Outcome, SnapshotsArgs};
use crate::context::AgentContext;
use crate::snapshot_select::{self, Hosts};
use crate::units::Bytes;

/// Runs `stowage snapshots`.
///
/// # Errors
///
/// Not enrolled, or the server fails.
pub async fn run(global: &Global, args: SnapshotsArgs) -> anyhow::Result<Outcome> {
    let context = AgentContext::load(global)?;
    let hosts = if args.all_hosts {
        Hosts::All
    } else {
        Hosts::One(
            args.host
                .unwrap_or_else(|| context.profile.hostname.clone()),
        )
    };
    let snapshots = snapshot_select::list(&context.client, &hosts).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&snapshots)?);
    } else {
        print!("{}", table(&snapshots));
        if let (true, Hosts::One(host)) = (snapshots.is_empty(), &hosts) {
            eprintln!("no snapshots of host {host:?}; --all-hosts lists every host's");
        }
    }
    Ok(Outcome::Success)
}

/// The human listing: one line per snapshot.
fn table(snapshots: &[SnapshotListItem]) -> String {
    let mut out = String::new();
    if snapshots.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<16}  {:<19}  {:<20}  {:>8}  {:>10}  {:>6}  paths / tags",
        "id", "time (UTC)", "host", "files", "size", "errors"
    );
    for item in snapshots {
        let record = &item.record;
        let paths: Vec<String> = record
            .paths
            .iter()
            .map(|path| String::from_utf8_lossy(&path.0).into_owned())
            .collect();
        let tags = if record.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", record.tags.join(", "))
        };
        let _ = writeln!(
            out,
            "{:<16}  {:<19}  {:<20}  {:>8}  {:>10}  {:>6}  {}{tags}",
            &item.id.to_hex()[..16],
            record.finished_at.format("%Y-%m-%d %H:%M:%S"),
            record.hostname,
            record.summary.files,
            Bytes(record.summary.total_bytes).to_string(),
            record.summary.errors,
            paths.join(" "),
        );
    }
    out
}
