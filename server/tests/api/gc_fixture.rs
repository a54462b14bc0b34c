//! A repository built straight into the index for the garbage collection
//! tests: a tenant and an agent, packs of made-up blobs indexed with
//! `packs::index` and stored as objects, snapshots inserted as commits
//! store them, and raw SQL for what no server function does (forgetting a
//! snapshot is retention's job, not garbage collection's).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use secrecy::ExposeSecret;
use sqlx::{AssertSqlSafe, Connection};
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{AgentId, BlobId, PackId, PlanId, SnapshotId, TenantId};
use stowage_protocol::snapshot::{RawPath, SnapshotRecord, SnapshotSummary};
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::packs::{self, IndexedBlob};
use stowage_server::db::snapshots::{self, NewSnapshot};
use stowage_server::db::upload_sessions;
use stowage_server::db::{Database, tenants};
use stowage_server::domain::TenantName;
use stowage_server::gc::{self, FaultPoint, GcOptions, GcReport};
use stowage_server::ingest::pack_key;
use stowage_server::storage::{LocalStore, ObjectStore};
use tempfile::TempDir;

use crate::helpers::{fresh_postgres, random_hex};

/// Bytes of every made-up pack object.
pub const PACK_SIZE: u64 = 100;

/// A database (SQLite in `dir`, or a fresh PostgreSQL database), a local
/// object store in `dir`, and one tenant with one agent.
pub struct Stack {
    pub db: Database,
    pub url: String,
    pub store: Arc<LocalStore>,
    pub dir: TempDir,
    pub tenant: TenantId,
    /// The tenant's name, as `gc --tenant` takes it.
    pub tenant_name: String,
    pub agent: AgentId,
}

impl Stack {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings::sqlite_in(dir.path());
        Self::on(settings, dir).await
    }

    pub async fn postgres(test: &str) -> Option<Self> {
        let settings = fresh_postgres(test).await?;
        Some(Self::on(settings, tempfile::tempdir().unwrap()).await)
    }

    async fn on(settings: DatabaseSettings, dir: TempDir) -> Self {
        let db = Database::connect(&settings).await.unwrap();
        db.migrate().await.unwrap();
        let tenant_name = format!("gc-{}", &random_hex()[..8]);
        let name = TenantName::parse(&tenant_name).unwrap();
        let tenant = tenants::insert(&db, &name).await.unwrap().id;
        let agent = agents::insert(
            &db,
            tenant,
            NewAgent {
                id: AgentId::random(),
                name: "db1",
                hostname: "db1.example.com",
                credential_hash: &random_hex(),
            },
        )
        .await
        .unwrap()
        .id;
        let store = Arc::new(LocalStore::open(&dir.path().join("objects")).await.unwrap());
        Self {
            db,
            url: settings.url.expose_secret().to_owned(),
            store,
            dir,
            tenant,
            tenant_name,
            agent,
        }
    }

    /// Indexes a pack of `blobs` and stores an object for it.
    pub async fn pack(&self, blobs: &[IndexedBlob]) -> PackId {
        let id = PackId::from_bytes(random_bytes());
        self.store
            .put_bytes(&pack_key(self.tenant, id), vec![7u8; 100].into())
            .await
            .unwrap();
        packs::index(&self.db, self.tenant, id, PACK_SIZE, blobs)
            .await
            .unwrap();
        id
    }

    /// Stores a snapshot of `root` as a commit would, and answers its id.
    pub async fn snapshot(&self, root: BlobId) -> SnapshotId {
        self.snapshot_of(root, None, self.agent).await
    }

    /// Stores a snapshot of `root` taken by `agent` for `plan`.
    pub async fn snapshot_of(
        &self,
        root: BlobId,
        plan: Option<PlanId>,
        agent: AgentId,
    ) -> SnapshotId {
        let record = SnapshotRecord {
            root,
            parent: None,
            hostname: "db1".to_owned(),
            agent,
            plan,
            paths: vec![RawPath(b"/srv".to_vec())],
            tags: Vec::new(),
            started_at: Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap(),
            finished_at: Utc.with_ymd_and_hms(2026, 12, 6, 3, 5, 0).unwrap(),
            summary: SnapshotSummary::default(),
            error_log: None,
        };
        let canonical = String::from_utf8(record.canonical_bytes()).unwrap();
        snapshots::insert(
            &self.db,
            self.tenant,
            NewSnapshot {
                id: record.id(),
                agent_id: agent,
                record: &canonical,
                root,
                hostname: "db1",
                plan_id: plan,
                started_at: record.started_at,
                finished_at: record.finished_at,
            },
        )
        .await
        .unwrap();
        record.id()
    }

    /// Forgets a snapshot the way retention does: its row goes.
    pub async fn forget(&self, snapshot: SnapshotId) {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        let done = sqlx::query(AssertSqlSafe(
            "DELETE FROM snapshots WHERE tenant_id = $1 AND id = $2".to_owned(),
        ))
        .bind(self.tenant.to_hex())
        .bind(snapshot.as_bytes().to_vec())
        .execute(&mut conn)
        .await
        .unwrap();
        assert_eq!(done.rows_affected(), 1);
    }

    /// One full run with no orphan age.
    pub async fn collect(&self, dry_run: bool) -> GcReport {
        gc::collect(
            &self.db,
            self.store.as_ref(),
            self.tenant,
            GcOptions {
                dry_run,
                orphan_min_age: std::time::Duration::ZERO,
                ..GcOptions::default()
            },
        )
        .await
        .unwrap()
    }

    pub async fn blob_exists(&self, id: BlobId) -> bool {
        !packs::locate(&self.db, self.tenant, &[id])
            .await
            .unwrap()
            .is_empty()
    }

    /// Whether the pack has its row and its object; panics when it has only
    /// one of them (the index must never name a missing object).
    pub async fn pack_exists(&self, id: PackId) -> bool {
        let row = packs::get(&self.db, self.tenant, id).await.is_ok();
        let object = self.store.exists(&pack_key(self.tenant, id)).await.unwrap();
        assert!(
            !row || object,
            "pack {id} is indexed but its object is gone"
        );
        row
    }

    /// Runs the `gc` command (`--json`, no orphan age) on the stack's data
    /// directory and database, aborting at `fault` when one is given.
    pub fn gc_command(&self, fault: Option<FaultPoint>) -> std::process::Output {
        let mut envs = vec![("STOWAGE_DATABASE_URL", self.url.as_str())];
        if let Some(point) = fault {
            envs.push(("STOWAGE_GC_FAULT", point.name()));
        }
        crate::admin_cli::run(
            self.dir.path(),
            &[
                "gc",
                "--tenant",
                &self.tenant_name,
                "--json",
                "--orphan-min-age",
                "0s",
            ],
            &envs,
            "",
        )
    }

    /// An upload session of the stack's agent, open for an hour.
    pub async fn open_session(&self) -> upload_sessions::UploadSession {
        upload_sessions::open(&self.db, self.tenant, self.agent, Duration::from_hours(1))
            .await
            .unwrap()
    }

    /// Ends the claim of a `gc` that was killed, as its lease running out
    /// (`gc::claim::CLAIM_LEASE` after its last renewal) would; answers
    /// whether it was still held, as it must be.
    pub async fn let_killed_run_s_claim_run_out(&self) -> bool {
        let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
        sqlx::query(AssertSqlSafe(
            "UPDATE gc_runs SET lease_expires_at = 0 \
             WHERE tenant_id = $1 AND holder IS NOT NULL AND lease_expires_at > $2"
                .to_owned(),
        ))
        .bind(self.tenant.to_hex())
        .bind(Utc::now().timestamp_millis())
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected()
            == 1
    }

    pub async fn object_exists(&self, id: PackId) -> bool {
        self.store.exists(&pack_key(self.tenant, id)).await.unwrap()
    }
}

pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

pub fn data() -> IndexedBlob {
    IndexedBlob {
        id: BlobId::from_bytes(random_bytes()),
        kind: BlobKind::Data,
        offset: 0,
        length: 10,
        refs: Vec::new(),
    }
}

pub fn tree(refs: &[BlobId]) -> IndexedBlob {
    let mut refs = refs.to_vec();
    refs.sort_unstable();
    IndexedBlob {
        id: BlobId::from_bytes(random_bytes()),
        kind: BlobKind::Tree,
        offset: 0,
        length: 10,
        refs,
    }
}
