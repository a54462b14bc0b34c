-- Operator API keys (issue 5): automation manages plans and jobs over the
-- API with a key, as the command line does on the server's machine.
--
-- Like agent credentials, a key is `sk_<tenant hex>.<key id hex>.<secret>`
-- and only a keyed hash of the secret is stored (auth::token). The role is
-- one of the four user roles and caps what the key may do. Revoking sets
-- revoked_at and keeps the row, so audit entries still name a known key.
-- Keep this file identical between migrations/sqlite/ and migrations/postgres/.

CREATE TABLE api_keys (
    id            TEXT    PRIMARY KEY CHECK (length(id) = 32),
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    secret_hash   TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    UNIQUE (tenant_id, name)
);
