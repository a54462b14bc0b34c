-- Trees known complete: a tree is recorded here by the commit that made a
-- snapshot reaching it visible, in the same transaction, after that commit
-- checked that every blob below the tree is stored. Later commits stop their
-- reachability walk at these trees instead of walking the shared part of
-- every snapshot again.
--
-- The row goes with its tree blob (the foreign key cascades). Garbage
-- collection must also delete the row of every tree it finds unreachable
-- from the snapshots it keeps, before it deletes any blob below that tree,
-- even when the tree itself survives (e.g. leased by an open session):
-- a row must never outlive anything below its tree.
-- Keep this file column-for-column identical to migrations/postgres/.

CREATE TABLE complete_trees (
    tenant_id  TEXT  NOT NULL,
    tree_id    BLOB  NOT NULL,
    PRIMARY KEY (tenant_id, tree_id),
    FOREIGN KEY (tenant_id, tree_id) REFERENCES blobs (tenant_id, id) ON DELETE CASCADE
);
