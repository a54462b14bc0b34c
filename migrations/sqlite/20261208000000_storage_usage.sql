-- Storage accounting per tenant (server/src/gc/usage.rs), written at the end
-- of every garbage collection run that is not a dry run, and read by
-- `stowage-server usage` and `GET /api/v1/usage`. Bytes stored now are not
-- kept here: they are summed from `packs` when asked, which is cheap.
--
-- storage_usage: one row per tenant, replaced by each run.
--   live_bytes / live_blobs: distinct stored blobs the run's mark found
--     live (every snapshot, and every blob leased to a running backup),
--     by sealed length: the deduplicated total.
--   dead_pack_bytes / dead_packs: packs whose every blob was dead at the
--     mark, by object size.
--   partly_dead_bytes: sealed lengths of the dead blobs in packs that also
--     hold live ones (what a repack would reclaim).
--   reclaimed_bytes: what that run then deleted of the wholly dead packs
--     (less than dead_pack_bytes when a running backup kept some).
--   walk_millis: how long walking the groups below took.
--
-- storage_usage_groups: per (plan, agent) of the tenant's snapshots, the
-- distinct stored blobs reachable from that group's snapshots; a blob two
-- groups reach counts in both. plan_id is '' for snapshots of no plan.
-- Keep this file column-for-column identical to migrations/postgres/.

CREATE TABLE storage_usage (
    tenant_id          TEXT    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    computed_at        BIGINT  NOT NULL,
    live_bytes         BIGINT  NOT NULL,
    live_blobs         BIGINT  NOT NULL,
    dead_pack_bytes    BIGINT  NOT NULL,
    dead_packs         BIGINT  NOT NULL,
    partly_dead_bytes  BIGINT  NOT NULL,
    reclaimed_bytes    BIGINT  NOT NULL,
    walk_millis        BIGINT  NOT NULL
);

CREATE TABLE storage_usage_groups (
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id           TEXT    NOT NULL,
    agent_id          TEXT    NOT NULL,
    snapshots         BIGINT  NOT NULL,
    referenced_bytes  BIGINT  NOT NULL,
    referenced_blobs  BIGINT  NOT NULL,
    computed_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, plan_id, agent_id)
);
