-- The server's own garbage collection pass (server/src/scheduler/gc_pass.rs).
--
-- gc_runs: one row per tenant. An instance that wants to collect a tenant
-- claims the row: it writes its holder id and a lease end, but only when no
-- other holder's lease is running and no run started within the interval.
-- So instances sharing a database do not collect the same tenant at once or
-- twice per interval (concurrent runs would be safe, only wasted work). A
-- run that dies leaves its lease to run out; the next claim after that
-- takes over. The totals say what the server's runs did, for operators and
-- the soak test.
-- Keep this file column-for-column identical to the other backend's.

CREATE TABLE gc_runs (
    tenant_id         TEXT    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    holder            TEXT,
    lease_expires_at  BIGINT  NOT NULL,
    last_started_at   BIGINT  NOT NULL,
    last_finished_at  BIGINT,
    runs              BIGINT  NOT NULL DEFAULT 0,
    failures          BIGINT  NOT NULL DEFAULT 0,
    packs_deleted     BIGINT  NOT NULL DEFAULT 0,
    bytes_reclaimed   BIGINT  NOT NULL DEFAULT 0,
    last_error        TEXT
);
