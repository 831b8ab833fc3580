-- vrcloud schema, part 7: point-in-time instances as replica servers record
-- them (POST /api/internal/replications/{id}/instances, docs/instances.md).
-- An instance's id is the instance id of its transfer header (chosen by the
-- site's agent), so a server that records the same instance twice finds it.

-- Blocks the instance changed, and the server that received it.
ALTER TABLE instances ADD COLUMN blocks bigint NOT NULL DEFAULT 0 CHECK (blocks >= 0);
ALTER TABLE instances ADD COLUMN server_id uuid
    REFERENCES replica_servers (id) ON DELETE SET NULL;

-- The hash root is a SHA-256; counts never go negative.
ALTER TABLE instances ADD CONSTRAINT instances_hash_root_check
    CHECK (hash_root IS NULL OR length(hash_root) = 32);
ALTER TABLE instances ADD CONSTRAINT instances_counts_check
    CHECK (seq >= 1 AND transfer_seconds >= 0 AND transfer_bytes >= 0);

-- Retention reads a replication's instances by point in time.
CREATE INDEX instances_retention_idx
    ON instances (replication_id, transfer_start_time, seq) INCLUDE (id, pinned);
