-- Garbage collection's bookkeeping (server/src/gc/).
--
-- gc_epochs: a counter per tenant that every sweep transaction bumps before
-- it deletes index rows. A commit reads it before its reachability walk and
-- again inside its transaction; a change means blobs may have gone since
-- the walk, and the commit is refused as retryable instead of making a
-- snapshot visible that trusts them. The row is also the lock that orders
-- a sweep against a commit on PostgreSQL.
--
-- gc_pending_deletes: packs whose index rows a sweep deleted and whose
-- object it has not yet deleted. Written in the sweep's transaction and
-- removed after the object is gone, so a run that dies in between leaves
-- a record the next run finishes from.
--
-- gc_orphan_sightings: pack objects with no packs row (an upload that died
-- between writing its object and indexing it), with when a run first saw
-- each. A later run deletes the object once it has been an orphan for long
-- enough not to belong to an upload in flight.
-- Keep this file column-for-column identical to migrations/postgres/ (only
-- the byte type differs: BLOB here, BYTEA there).

CREATE TABLE gc_epochs (
    tenant_id  TEXT    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    epoch      BIGINT  NOT NULL
);

CREATE TABLE gc_pending_deletes (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pack_id     BLOB   NOT NULL CHECK (length(pack_id) = 32),
    size        BIGINT  NOT NULL,
    deleted_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, pack_id)
);

CREATE TABLE gc_orphan_sightings (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pack_id        BLOB   NOT NULL CHECK (length(pack_id) = 32),
    first_seen_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, pack_id)
);
