-- Foundation tables: tenants, their users, and the audit log.
-- Ids are 32-character lowercase hex TEXT (16 random bytes); times are BIGINT
-- milliseconds since the Unix epoch (UTC), the one timestamp form that the sqlx
-- Any driver reads identically from SQLite and PostgreSQL.
-- Keep this file column-for-column identical to migrations/postgres/.

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY CHECK (length(id) = 32),
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    id             TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email          TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    created_at     BIGINT  NOT NULL,
    UNIQUE (tenant_id, email)
);

-- The audit log outlives what it describes: tenant_id is deliberately not a
-- foreign key, and is NULL for platform-level events.
CREATE TABLE audit_log (
    id         TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id  TEXT,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    details    TEXT    NOT NULL,
    at         BIGINT  NOT NULL
);

CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);
