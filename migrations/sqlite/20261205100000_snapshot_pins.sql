-- Pinned snapshots (legal hold, issue 6): retention never forgets them and
-- no one can forget them until they are unpinned. A table of its own, not
-- a column, so the hold carries who set it, when and why, and so a
-- snapshot cannot be deleted while a pin row references it (the foreign key
-- has no ON DELETE action: deleting a pinned snapshot fails).
-- Keep this file identical to migrations/postgres/ but for BLOB in place of BYTEA.

CREATE TABLE snapshot_pins (
    tenant_id    TEXT    NOT NULL,
    snapshot_id  BLOB    NOT NULL CHECK (length(snapshot_id) = 32),
    reason       TEXT    NOT NULL,
    pinned_by    TEXT    NOT NULL,
    pinned_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, snapshot_id),
    FOREIGN KEY (tenant_id, snapshot_id) REFERENCES snapshots (tenant_id, id)
);
