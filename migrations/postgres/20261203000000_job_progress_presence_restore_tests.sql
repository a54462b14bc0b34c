-- Live job progress, agent presence, restore-test results (issue 5).
--
-- jobs is rebuilt (SQLite cannot change a UNIQUE constraint in place; the
-- same statements run on PostgreSQL) so that its slot key includes the
-- kind: a plan's restore tests are scheduled in slots of their own
-- cadence, and a restore-test slot must never collide with a backup slot
-- at the same instant. Nothing references jobs yet, so dropping the old
-- table loses no foreign key. New columns: the rate of the latest progress
-- report and when it came.
--
-- plans gain the size cap of a rehearsal (NULL: the whole snapshot).
-- agents gain what the daemon reports about itself (NULL until it does);
-- filesystems is JSON, read and written whole.
-- restore_tests keeps one row per finished restore test, failed ones too,
-- so "the last good rehearsal" and its time against the RTO are one
-- indexed lookup per plan.
-- Keep this file identical between migrations/sqlite/ and migrations/postgres/.

CREATE TABLE jobs_v2 (
    id                TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id           TEXT,
    agent_id          TEXT    NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('backup', 'restore', 'verify', 'restore_test')),
    "trigger"         TEXT    NOT NULL CHECK ("trigger" IN ('schedule', 'run_now', 'api')),
    slot_at           BIGINT,
    state             TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    created_at        BIGINT  NOT NULL,
    claimed_at        BIGINT,
    lease_expires_at  BIGINT,
    finished_at       BIGINT,
    bytes             BIGINT,
    files             BIGINT,
    error             TEXT,
    log               TEXT,
    params            TEXT,
    bytes_per_second  BIGINT,
    progress_at       BIGINT,
    CHECK (("trigger" = 'schedule') = (slot_at IS NOT NULL)),
    UNIQUE (tenant_id, plan_id, agent_id, kind, slot_at),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

INSERT INTO jobs_v2 (id, tenant_id, plan_id, agent_id, kind, "trigger", slot_at, state,
    created_at, claimed_at, lease_expires_at, finished_at, bytes, files, error, log, params)
SELECT id, tenant_id, plan_id, agent_id, kind, "trigger", slot_at, state,
    created_at, claimed_at, lease_expires_at, finished_at, bytes, files, error, log, params
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;

CREATE INDEX jobs_queued ON jobs (tenant_id, agent_id, created_at) WHERE state = 'queued';
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at);
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';

ALTER TABLE plans ADD COLUMN restore_test_max_bytes BIGINT CHECK (restore_test_max_bytes > 0);

ALTER TABLE agents ADD COLUMN agent_version TEXT;
ALTER TABLE agents ADD COLUMN os TEXT;
ALTER TABLE agents ADD COLUMN filesystems TEXT;
ALTER TABLE agents ADD COLUMN facts_at BIGINT;

CREATE TABLE restore_tests (
    job_id       TEXT    PRIMARY KEY CHECK (length(job_id) = 32),
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id      TEXT    NOT NULL,
    agent_id     TEXT    NOT NULL,
    snapshot_id  TEXT    NOT NULL CHECK (length(snapshot_id) = 64),
    succeeded    BIGINT  NOT NULL CHECK (succeeded IN (0, 1)),
    error        TEXT,
    files        BIGINT  NOT NULL,
    bytes        BIGINT  NOT NULL,
    restore_ms   BIGINT  NOT NULL,
    check_ms     BIGINT  NOT NULL,
    sampled      BIGINT  NOT NULL CHECK (sampled IN (0, 1)),
    finished_at  BIGINT  NOT NULL,
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX restore_tests_plan ON restore_tests (tenant_id, plan_id, finished_at);
