-- Agents, enrollment, tenant keys and the zero-knowledge ingest index:
-- packs, the blobs inside them, tree references, upload sessions with their
-- leases, and committed snapshots.
--
-- Content-addressed ids (blobs, packs, snapshots: 32-byte BLAKE3 hashes) are
-- stored as raw bytes (BYTEA), not hex TEXT: a tenant holds millions of
-- blob rows, and 32 bytes instead of 64 characters halves the largest
-- indexes. The sqlx Any driver round-trips Vec<u8> on both engines (tested
-- in server/tests/api). Random ids (tenants, agents, tokens, sessions, plans)
-- stay 32-character hex TEXT like the foundation tables; times are BIGINT
-- milliseconds since the Unix epoch (UTC).
-- Every table carries tenant_id and every query filters on it.
-- Keep this file column-for-column identical to migrations/sqlite/.

CREATE TABLE agents (
    id               TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id        TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    hostname         TEXT    NOT NULL,
    credential_hash  TEXT    NOT NULL UNIQUE,
    created_at       BIGINT  NOT NULL,
    last_seen_at     BIGINT,
    revoked_at       BIGINT,
    UNIQUE (tenant_id, name)
);

-- One-time tokens: only a hash of the secret is kept; used_at is set by the
-- single UPDATE that consumes a token, so two racing enrollments cannot both win.
CREATE TABLE enrollment_tokens (
    id             TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash     TEXT    NOT NULL UNIQUE,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT,
    used_by_agent  TEXT
);

CREATE INDEX enrollment_tokens_tenant ON enrollment_tokens (tenant_id, created_at);

-- Written once by the first agent; the server cannot unwrap them.
CREATE TABLE tenant_keys (
    tenant_id     TEXT    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    wrapped_keys  BYTEA   NOT NULL,
    public_key    BYTEA   NOT NULL,
    repo_config   TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE packs (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          BYTEA   NOT NULL CHECK (length(id) = 32),
    size        BIGINT  NOT NULL,
    blob_count  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One row per stored blob. A blob uploaded twice (two racing sessions) keeps
-- its first location; the copy in the later pack is garbage for repacking.
-- kind is the format byte: 1 data, 2 tree.
CREATE TABLE blobs (
    tenant_id  TEXT      NOT NULL,
    id         BYTEA     NOT NULL CHECK (length(id) = 32),
    pack_id    BYTEA     NOT NULL,
    kind       SMALLINT  NOT NULL CHECK (kind IN (1, 2)),
    "offset"   BIGINT    NOT NULL,
    length     BIGINT    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, pack_id) REFERENCES packs (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX blobs_pack ON blobs (tenant_id, pack_id);

-- The blobs a tree blob references (subtrees and content chunks), from the
-- pack table, so reachability is walked without reading sealed trees.
CREATE TABLE blob_refs (
    tenant_id  TEXT   NOT NULL,
    tree_id    BYTEA  NOT NULL,
    ref_id     BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, tree_id, ref_id),
    FOREIGN KEY (tenant_id, tree_id) REFERENCES blobs (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE upload_sessions (
    id                TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id          TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    created_at        BIGINT  NOT NULL,
    lease_expires_at  BIGINT  NOT NULL,
    committed_at      BIGINT
);

CREATE INDEX upload_sessions_tenant_lease ON upload_sessions (tenant_id, lease_expires_at);

-- Blobs a session was told are present: garbage collection keeps them while
-- the session's lease is live.
CREATE TABLE session_leases (
    tenant_id   TEXT   NOT NULL,
    session_id  TEXT   NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
    blob_id     BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, session_id, blob_id)
);

-- Committed snapshots. record is the canonical JSON whose BLAKE3 is the id;
-- agent_id is not a foreign key because a snapshot outlives its agent.
CREATE TABLE snapshots (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            BYTEA   NOT NULL CHECK (length(id) = 32),
    agent_id      TEXT    NOT NULL,
    record        TEXT    NOT NULL,
    root          BYTEA   NOT NULL,
    hostname      TEXT    NOT NULL,
    plan_id       TEXT,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT  NOT NULL,
    committed_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX snapshots_tenant_committed ON snapshots (tenant_id, committed_at);
