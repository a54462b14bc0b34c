//! The agents-and-ingest schema contract (agents, enrollment tokens, tenant
//! keys, packs and blobs, upload sessions, snapshots), run on SQLite always
//! and on PostgreSQL when configured. Every read of another tenant's row
//! must come back NotFound or empty.

use std::time::Duration;

use chrono::Utc;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::{AgentId, BlobId, PackId, PlanId, SnapshotId, TenantId};
use stowage_server::auth::token;
use stowage_server::configuration::DatabaseSettings;
use stowage_server::db::agents::{self, NewAgent};
use stowage_server::db::enrollment_tokens::{self, ConsumeError};
use stowage_server::db::packs::{self, IndexOutcome, IndexedBlob};
use stowage_server::db::snapshots::{self, InsertOutcome, NewSnapshot};
use stowage_server::db::tenant_keys::{self, NewTenantKeys, PutOutcome};
use stowage_server::db::{Database, DbError, tenants, upload_sessions};
use stowage_server::domain::TenantName;

use crate::helpers::fresh_postgres;

fn blob_id(n: u8) -> BlobId {
    BlobId::from_bytes([n; 32])
}

async fn open(settings: &DatabaseSettings) -> (Database, TenantId, TenantId) {
    let db = Database::connect(settings).await.unwrap();
    db.migrate().await.unwrap();
    let acme = tenants::insert(&db, &TenantName::parse("Acme").unwrap())
        .await
        .unwrap();
    let globex = tenants::insert(&db, &TenantName::parse("Globex").unwrap())
        .await
        .unwrap();
    (db, acme.id, globex.id)
}

fn is_not_found<T: std::fmt::Debug>(result: &Result<T, DbError>, what: &str) -> bool {
    matches!(result, Err(DbError::NotFound { what: w, .. }) if *w == what)
}

async fn new_agent(db: &Database, tenant: TenantId, name: &str) -> agents::Agent {
    let credential = token::generate();
    let new = NewAgent {
        id: AgentId::random(),
        name,
        hostname: "db1.example.com",
        credential_hash: &credential.hash,
    };
    agents::insert(db, tenant, new).await.unwrap()
}

async fn agents_contract(db: &Database, acme: TenantId, globex: TenantId) {
    let first = new_agent(db, acme, "db1").await;
    let second = new_agent(db, acme, "db2").await;
    new_agent(db, globex, "db1").await; // names are unique per tenant only

    assert_eq!(agents::get(db, acme, first.id).await.unwrap(), first);
    assert_eq!(
        agents::list(db, acme).await.unwrap(),
        [first.clone(), second]
    );
    assert!(is_not_found(
        &agents::get(db, globex, first.id).await,
        "agent"
    ));
    assert!(is_not_found(
        &agents::credential_hash(db, globex, first.id).await,
        "agent"
    ));
    let clash = NewAgent {
        id: AgentId::random(),
        name: "db1",
        hostname: "h",
        credential_hash: &token::generate().hash,
    };
    assert!(matches!(
        agents::insert(db, acme, clash).await,
        Err(DbError::AlreadyExists { what: "agent", .. })
    ));

    assert!(is_not_found(
        &agents::revoke(db, globex, first.id).await,
        "agent"
    ));
    agents::revoke(db, acme, first.id).await.unwrap();
    let revoked = agents::get(db, acme, first.id).await.unwrap().revoked_at;
    agents::revoke(db, acme, first.id).await.unwrap();
    assert!(revoked.is_some());
    assert_eq!(
        agents::get(db, acme, first.id).await.unwrap().revoked_at,
        revoked
    );
}

async fn tokens_contract(db: &Database, acme: TenantId) {
    let created = enrollment_tokens::create(db, acme, Duration::from_hours(1))
        .await
        .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&created.secret).to_owned();
    assert!(created.expires_at > Utc::now());

    let tenant = enrollment_tokens::consume(db, &secret, AgentId::random())
        .await
        .unwrap();
    let reused = enrollment_tokens::consume(db, &secret, AgentId::random()).await;
    let unknown = enrollment_tokens::consume(db, &token::generate().hash, AgentId::random()).await;

    assert_eq!(tenant, acme);
    assert!(
        matches!(reused, Err(ConsumeError::AlreadyUsed(_))),
        "{reused:?}"
    );
    assert!(matches!(unknown, Err(ConsumeError::Unknown)), "{unknown:?}");

    let short = enrollment_tokens::create(db, acme, Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = enrollment_tokens::consume(
        db,
        secrecy::ExposeSecret::expose_secret(&short.secret),
        AgentId::random(),
    )
    .await;
    let message = late.as_ref().map_err(ToString::to_string).unwrap_err();
    assert!(matches!(late, Err(ConsumeError::Expired(_))), "{late:?}");
    assert!(
        message.starts_with("the enrollment token expired at"),
        "{message}"
    );
}

async fn enrollment_is_all_or_nothing(db: &Database, acme: TenantId, globex: TenantId) {
    let created = enrollment_tokens::create(db, acme, Duration::from_mins(5))
        .await
        .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&created.secret).to_owned();
    let credential = token::generate();
    let agent = |name| NewAgent {
        id: AgentId::random(),
        name,
        hostname: "web1",
        credential_hash: &credential.hash,
    };
    new_agent(db, acme, "taken").await;

    let clash = enrollment_tokens::enroll(db, &secret, agent("taken")).await;
    let enrolled = enrollment_tokens::enroll(db, &secret, agent("web1"))
        .await
        .unwrap();
    let again = enrollment_tokens::enroll(db, &secret, agent("web2")).await;

    assert!(
        matches!(
            clash,
            Err(ConsumeError::Db(DbError::AlreadyExists {
                what: "agent",
                ..
            }))
        ),
        "{clash:?}"
    );
    assert_eq!(enrolled.tenant_id, acme);
    assert_eq!(agents::get(db, acme, enrolled.id).await.unwrap(), enrolled);
    assert!(is_not_found(
        &agents::get(db, globex, enrolled.id).await,
        "agent"
    ));
    assert_eq!(
        agents::credential_hash(db, acme, enrolled.id)
            .await
            .unwrap(),
        credential.hash
    );
    assert!(
        matches!(again, Err(ConsumeError::AlreadyUsed(_))),
        "{again:?}"
    );
}

async fn racing_consumers_have_one_winner(db: &Database, acme: TenantId) {
    let created = enrollment_tokens::create(db, acme, Duration::from_mins(1))
        .await
        .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&created.secret).to_owned();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let (db, secret) = (db.clone(), secret.clone());
            tokio::spawn(async move {
                enrollment_tokens::consume(&db, &secret, AgentId::random()).await
            })
        })
        .collect();
    let mut wins = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => wins += 1,
            Err(ConsumeError::AlreadyUsed(_)) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(wins, 1);
}

async fn tenant_keys_contract(db: &Database, acme: TenantId, globex: TenantId) {
    let wrapped: Vec<u8> = (0..=169).collect(); // every byte value 0..170, incl. 0 and 0x7f+
    let public = vec![0xff; 32];
    let keys = NewTenantKeys {
        wrapped_keys: &wrapped,
        public_key: &public,
        repo_config: r#"{"format":"stowage-repo","version":1}"#,
    };
    assert!(is_not_found(
        &tenant_keys::get(db, acme).await,
        "keys of tenant"
    ));

    assert_eq!(
        tenant_keys::put(db, acme, keys).await.unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        tenant_keys::put(db, acme, keys).await.unwrap(),
        PutOutcome::AlreadyStored
    );
    let other = NewTenantKeys {
        public_key: &[1; 32],
        ..keys
    };
    assert!(matches!(
        tenant_keys::put(db, acme, other).await,
        Err(DbError::AlreadyExists { .. })
    ));

    let stored = tenant_keys::get(db, acme).await.unwrap();
    assert_eq!(stored.wrapped_keys, wrapped);
    assert_eq!(stored.public_key, public);
    assert_eq!(stored.repo_config, keys.repo_config);
    assert!(is_not_found(
        &tenant_keys::get(db, globex).await,
        "keys of tenant"
    ));
}

fn sample_pack() -> (PackId, Vec<IndexedBlob>) {
    let mut blobs: Vec<IndexedBlob> = (1..=200u8)
        .map(|n| IndexedBlob {
            id: blob_id(n),
            kind: BlobKind::Data,
            offset: u32::from(n) * 100,
            length: 100,
            refs: Vec::new(),
        })
        .collect();
    blobs.push(IndexedBlob {
        id: blob_id(0),
        kind: BlobKind::Tree,
        offset: 4_000_000_000,
        length: 64,
        refs: (1..=150u8).map(blob_id).collect(),
    });
    (PackId::digest(b"pack one"), blobs)
}

async fn packs_contract(db: &Database, acme: TenantId, globex: TenantId) {
    let (pack, blobs) = sample_pack();

    let first = packs::index(db, acme, pack, 123_456, &blobs).await.unwrap();
    let retry = packs::index(db, acme, pack, 123_456, &blobs).await.unwrap();

    assert_eq!(first, IndexOutcome::Indexed);
    assert_eq!(retry, IndexOutcome::AlreadyIndexed);
    let stored = packs::get(db, acme, pack).await.unwrap();
    assert_eq!((stored.size, stored.blob_count), (123_456, 201));
    assert!(is_not_found(&packs::get(db, globex, pack).await, "pack"));

    // Missing: request order kept, present ids dropped, more than one batch.
    let asked: Vec<BlobId> = (0..=255u8).rev().chain([7, 250]).map(blob_id).collect();
    let missing = packs::missing_blobs(db, acme, &asked).await.unwrap();
    let expected: Vec<BlobId> = (201..=255u8).rev().chain([250]).map(blob_id).collect();
    assert_eq!(missing, expected);
    assert_eq!(
        packs::missing_blobs(db, globex, &asked).await.unwrap(),
        asked
    );
    assert!(
        packs::missing_blobs(db, acme, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let thousands: Vec<BlobId> = (0..1200u32)
        .map(|n| BlobId::from_bytes(*blake3::hash(&n.to_le_bytes()).as_bytes()))
        .chain([blob_id(3)])
        .collect();
    assert_eq!(
        packs::missing_blobs(db, acme, &thousands)
            .await
            .unwrap()
            .len(),
        1200
    );

    // Locations and tree references round-trip, large offsets included.
    let located = packs::locate(db, acme, &[blob_id(0), blob_id(9)])
        .await
        .unwrap();
    let tree = located.iter().find(|l| l.id == blob_id(0)).unwrap();
    assert_eq!(
        (tree.kind, tree.offset, tree.length),
        (BlobKind::Tree, 4_000_000_000, 64)
    );
    assert_eq!(tree.pack_id, pack);
    let refs = packs::tree_refs(db, acme, blob_id(0)).await.unwrap();
    assert_eq!(refs, (1..=150u8).map(blob_id).collect::<Vec<_>>());
    assert!(
        packs::tree_refs(db, globex, blob_id(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        packs::locate(db, globex, &[blob_id(0)])
            .await
            .unwrap()
            .is_empty()
    );

    // A second pack repeating a blob keeps the first location; the same pack
    // id in another tenant is that tenant's own.
    let again = vec![IndexedBlob {
        id: blob_id(5),
        kind: BlobKind::Data,
        offset: 0,
        length: 1,
        refs: Vec::new(),
    }];
    let second = PackId::digest(b"pack two");
    packs::index(db, acme, second, 10, &again).await.unwrap();
    let five = packs::locate(db, acme, &[blob_id(5)]).await.unwrap();
    assert_eq!(five[0].pack_id, pack);
    assert_eq!(
        packs::index(db, globex, pack, 1, &again).await.unwrap(),
        IndexOutcome::Indexed
    );
}

async fn a_pack_of_an_unknown_tenant_leaves_nothing(db: &Database) {
    let ghost = TenantId::random();
    let (pack, blobs) = sample_pack();

    assert!(packs::index(db, ghost, pack, 1, &blobs).await.is_err());
    assert!(is_not_found(&packs::get(db, ghost, pack).await, "pack"));
    assert!(
        packs::locate(db, ghost, &[blob_id(1)])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sessions_contract(db: &Database, acme: TenantId, globex: TenantId) {
    let agent = new_agent(db, acme, "uploader").await;
    let session = upload_sessions::open(db, acme, agent.id, Duration::from_mins(10))
        .await
        .unwrap();
    assert_eq!(
        upload_sessions::get(db, acme, session.id).await.unwrap(),
        session
    );
    assert!(is_not_found(
        &upload_sessions::get(db, globex, session.id).await,
        "upload session"
    ));

    let ids: Vec<BlobId> = (0..=255u8).chain(0..10).map(blob_id).collect();
    upload_sessions::lease_blobs(db, acme, session.id, &ids)
        .await
        .unwrap();
    upload_sessions::lease_blobs(db, acme, session.id, &ids[..5])
        .await
        .unwrap();
    assert_eq!(
        upload_sessions::leased_count(db, acme, session.id)
            .await
            .unwrap(),
        256
    );
    assert_eq!(
        upload_sessions::leased_count(db, globex, session.id)
            .await
            .unwrap(),
        0
    );

    let extended = upload_sessions::extend_lease(db, acme, session.id, Duration::from_mins(20))
        .await
        .unwrap();
    assert!(extended > session.lease_expires_at);
    assert!(is_not_found(
        &upload_sessions::extend_lease(db, globex, session.id, Duration::from_secs(1)).await,
        "upload session"
    ));

    upload_sessions::mark_committed(db, acme, session.id)
        .await
        .unwrap();
    assert!(
        upload_sessions::get(db, acme, session.id)
            .await
            .unwrap()
            .committed_at
            .is_some()
    );
    assert_eq!(
        upload_sessions::leased_count(db, acme, session.id)
            .await
            .unwrap(),
        0
    );
    assert!(is_not_found(
        &upload_sessions::extend_lease(db, acme, session.id, Duration::from_secs(1)).await,
        "upload session"
    ));

    let short = upload_sessions::open(db, acme, agent.id, Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(is_not_found(
        &upload_sessions::extend_lease(db, acme, short.id, Duration::from_secs(1)).await,
        "upload session"
    ));
}

async fn snapshots_contract(db: &Database, acme: TenantId, globex: TenantId) {
    let record = r#"{"format":"stowage-snapshot","version":1}"#;
    let started = Utc::now() - chrono::Duration::minutes(3);
    let new = NewSnapshot {
        id: SnapshotId::digest(record.as_bytes()),
        agent_id: AgentId::random(),
        record,
        root: blob_id(0),
        hostname: "db1",
        plan_id: Some(PlanId::random()),
        started_at: started,
        finished_at: Utc::now(),
    };

    assert_eq!(
        snapshots::insert(db, acme, new).await.unwrap(),
        InsertOutcome::Committed
    );
    assert_eq!(
        snapshots::insert(db, acme, new).await.unwrap(),
        InsertOutcome::AlreadyCommitted
    );
    let stored = snapshots::get(db, acme, new.id).await.unwrap();
    assert_eq!(stored.record, record);
    assert_eq!((stored.root, stored.plan_id), (new.root, new.plan_id));
    assert_eq!(
        stored.started_at.timestamp_millis(),
        started.timestamp_millis()
    );
    assert!(is_not_found(
        &snapshots::get(db, globex, new.id).await,
        "snapshot"
    ));
    assert_eq!(
        snapshots::list_page(db, acme, snapshots::ListFilter::default(), 10)
            .await
            .unwrap(),
        [stored]
    );
    assert!(
        snapshots::list_page(db, globex, snapshots::ListFilter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let unplanned = NewSnapshot {
        id: SnapshotId::digest(b"other"),
        plan_id: None,
        ..new
    };
    snapshots::insert(db, globex, unplanned).await.unwrap();
    assert_eq!(
        snapshots::get(db, globex, unplanned.id)
            .await
            .unwrap()
            .plan_id,
        None
    );
}

async fn ingest_contract(settings: &DatabaseSettings) {
    let (db, acme, globex) = open(settings).await;
    agents_contract(&db, acme, globex).await;
    tokens_contract(&db, acme).await;
    enrollment_is_all_or_nothing(&db, acme, globex).await;
    racing_consumers_have_one_winner(&db, acme).await;
    tenant_keys_contract(&db, acme, globex).await;
    packs_contract(&db, acme, globex).await;
    a_pack_of_an_unknown_tenant_leaves_nothing(&db).await;
    sessions_contract(&db, acme, globex).await;
    snapshots_contract(&db, acme, globex).await;
    db.close().await;
}

#[tokio::test]
async fn the_ingest_schema_holds_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();

    ingest_contract(&DatabaseSettings::sqlite_in(dir.path())).await;
}

#[tokio::test]
async fn the_ingest_schema_holds_on_postgres() {
    let Some(settings) = fresh_postgres("the_ingest_schema_holds_on_postgres").await else {
        return;
    };

    ingest_contract(&settings).await;
}
