-- Backup plans, the agents that run them, and jobs (issue 5).
--
-- sources and excludes are JSON text, not rows of their own: a plan's
-- sources are always read and written whole with the plan, never searched
-- one by one, and the agent receives them as one document. Two extra tables
-- with ordering columns would buy no query and cost a join on every read.
-- Retention keep_* columns are NULL when the rule is unused; durations are
-- whole seconds (BIGINT), times BIGINT milliseconds since the Unix epoch.
--
-- plans and agents get a UNIQUE (tenant_id, id) so that plan_agents and jobs
-- can point at them with composite foreign keys: a row can then never link
-- a plan of one tenant to an agent of another, whatever the code does.
-- Keep this file column-for-column identical to migrations/postgres/.

CREATE UNIQUE INDEX agents_tenant_id ON agents (tenant_id, id);

CREATE TABLE plans (
    id                          TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id                   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                        TEXT    NOT NULL,
    sources                     TEXT    NOT NULL,
    excludes                    TEXT    NOT NULL,
    schedule                    TEXT    NOT NULL,
    timezone                    TEXT    NOT NULL,
    keep_last                   BIGINT  CHECK (keep_last > 0),
    keep_hourly                 BIGINT  CHECK (keep_hourly > 0),
    keep_daily                  BIGINT  CHECK (keep_daily > 0),
    keep_weekly                 BIGINT  CHECK (keep_weekly > 0),
    keep_monthly                BIGINT  CHECK (keep_monthly > 0),
    keep_yearly                 BIGINT  CHECK (keep_yearly > 0),
    keep_within_seconds         BIGINT  CHECK (keep_within_seconds > 0),
    rpo_seconds                 BIGINT  CHECK (rpo_seconds > 0),
    rto_seconds                 BIGINT  CHECK (rto_seconds > 0),
    restore_test_every_seconds  BIGINT  CHECK (restore_test_every_seconds > 0),
    created_at                  BIGINT  NOT NULL,
    updated_at                  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE plan_agents (
    tenant_id  TEXT  NOT NULL,
    plan_id    TEXT  NOT NULL,
    agent_id   TEXT  NOT NULL,
    PRIMARY KEY (tenant_id, plan_id, agent_id),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX plan_agents_agent ON plan_agents (tenant_id, agent_id);

-- One row per unit of work for one agent. plan_id is NULL for jobs that
-- belong to no plan (e.g. an ad-hoc restore). A plan referenced by jobs
-- cannot be deleted (no ON DELETE action): deleting plans must first decide
-- what happens to their history. slot_at is the schedule slot a scheduled
-- job is for, NULL for other triggers. The server caps log before storing
-- it; params is JSON for restore and verify jobs.
--
-- UNIQUE (tenant_id, plan_id, agent_id, slot_at) is what the scheduler
-- relies on: every server instance may compute the same due slot and
-- INSERT ... ON CONFLICT DO NOTHING, and exactly one job per plan, agent
-- and slot results, with no lock and no leader. Rows with a NULL slot_at
-- (run now, API) never conflict: both engines treat NULLs as distinct.
CREATE TABLE jobs (
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
    CHECK (("trigger" = 'schedule') = (slot_at IS NOT NULL)),
    UNIQUE (tenant_id, plan_id, agent_id, slot_at),
    FOREIGN KEY (tenant_id, plan_id) REFERENCES plans (tenant_id, id),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);

-- Claiming: "the oldest queued jobs of agent X". Partial, so the index holds
-- only the few queued rows, not the whole history.
CREATE INDEX jobs_queued ON jobs (tenant_id, agent_id, created_at) WHERE state = 'queued';

-- Listing a tenant's recent jobs, newest first.
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at);
