-- Deletion records that outlive their deletions (server/src/gc/, the
-- resurrection race in gc/mod.rs "Why it is safe").
--
-- gc_pending_deletes keeps a row after its object is gone (finished_at set)
-- as a tombstone, and every row carries the garbage collection epoch of
-- the transaction that wrote it. Epochs are handed out under the tenant's
-- gc_epochs row lock, so they grow in commit order. A pack upload reads the
-- epoch before it writes its object and refuses to index the pack when a
-- record of it is unfinished or newer than that reading: the object it
-- wrote may be the one garbage collection is deleting.
--
-- gc_epochs.pruned_through: the newest epoch among the tombstones pruned
-- so far. An upload whose reading is older than that cannot tell whether a
-- pruned tombstone concerned its pack, and is refused (retryable).
-- Keep this file column-for-column identical to the other backend's.

ALTER TABLE gc_pending_deletes ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gc_pending_deletes ADD COLUMN finished_at BIGINT;
ALTER TABLE gc_epochs ADD COLUMN pruned_through BIGINT NOT NULL DEFAULT 0;
