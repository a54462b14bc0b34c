//! Finding snapshots by what people type: a full id, a unique prefix of
//! one, or `latest` (the newest of a host). Also the paging loop every
//! listing shares.

use stowage_protocol::api::SnapshotListItem;
use stowage_protocol::ids::SnapshotId;

use crate::api::{ServerClient, SnapshotPage};

/// Which hosts a listing covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    /// Only this host name.
    One(String),
    /// Every host of the tenant.
    All,
}

impl Hosts {
    fn admits(&self, item: &SnapshotListItem) -> bool {
        match self {
            Self::One(host) => item.record.hostname == *host,
            Self::All => true,
        }
    }
}

/// Every snapshot of the tenant on `hosts`, newest first, fetched page by page.
///
/// # Errors
///
/// The server's refusal or no answer.
pub async fn list(client: &ServerClient, hosts: &Hosts) -> anyhow::Result<Vec<SnapshotListItem>> {
    let mut all = Vec::new();
    let mut page = SnapshotPage {
        limit: Some(500),
        ..SnapshotPage::default()
    };
    loop {
        let list = client.list_snapshots(&page).await?;
        all.extend(list.snapshots.into_iter().filter(|item| hosts.admits(item)));
        match list.next_before {
            Some(before) => page.before = Some(before),
            None => return Ok(all),
        }
    }
}

/// The snapshot `spec` names: `latest` (the newest on `host`), a full id,
/// or a unique prefix of at least 4 hex digits (of any host's snapshot).
///
/// # Errors
///
/// No snapshot matches (naming the spec and the host), a prefix matches
/// several (listing them), or the server fails.
pub async fn resolve(
    client: &ServerClient,
    spec: &str,
    host: &str,
) -> anyhow::Result<SnapshotListItem> {
    if spec == "latest" {
        let snapshots = list(client, &Hosts::One(host.to_owned())).await?;
        return snapshots.into_iter().next().ok_or_else(|| {
            anyhow::anyhow!(
                "host {host:?} has no snapshot yet, so there is no `latest`; pass --host or a \
                 snapshot id (`stowage snapshots --all-hosts` lists them)"
            )
        });
    }
    if let Ok(id) = spec.parse::<SnapshotId>() {
        return client.snapshot(&id).await.map_err(|error| {
            if error.is_not_found() {
                anyhow::anyhow!("there is no snapshot {id} in this tenant")
            } else {
                error.into()
            }
        });
    }
    let prefix = spec.to_ascii_lowercase();
    if prefix.len() < 4 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!(
            "{spec:?} is not a snapshot: give `latest`, a full id, or at least 4 hex digits of one"
        );
    }
    let matches: Vec<SnapshotListItem> = list(client, &Hosts::All)
        .await?
        .into_iter()
        .filter(|item| item.id.to_hex().starts_with(&prefix))
        .collect();
    match matches.len() {
        0 => anyhow::bail!("no snapshot id starts with {prefix:?}"),
        1 => Ok(matches.into_iter().next().expect("one match")),
        n => anyhow::bail!(
            "{n} snapshots start with {prefix:?} ({}); give more digits",
            matches
                .iter()
                .take(5)
                .map(|item| item.id.to_hex()[..16].to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
