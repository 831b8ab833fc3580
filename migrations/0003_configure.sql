-- vrcloud schema, part 3: pairing sites through the API and configuring
-- replications (docs/configure.md): the state of a pairing, and the
-- retention policy of a replication's point-in-time instances.

-- A peer made by POST /api/vdc/{id}/peers is 'pairing' until its pair job
-- succeeds ('paired') or fails ('error'). Peers recorded before (vrcloudctl
-- peer add, earlier releases) were paired by hand: they are 'paired'.
ALTER TABLE peers ADD COLUMN state text NOT NULL DEFAULT 'paired'
    CHECK (state IN ('pairing', 'paired', 'error'));

-- A site is paired at most once with a VDC at a time; a revoked pairing no
-- longer counts, so the site may pair again.
DROP INDEX peers_vdc_site_key;
CREATE UNIQUE INDEX peers_vdc_site_key ON peers (vdc_id, site_uuid) WHERE revoked_at IS NULL;

-- The site credential is 32 random bytes; only its SHA-256 is kept.
ALTER TABLE peers ADD CONSTRAINT peers_credential_hash_check
    CHECK (credential_hash IS NULL OR length(credential_hash) = 32);

-- Retention of a replication's point-in-time instances: tiers from fine to
-- coarse, each keeping `instances` instances spaced `distance_minutes`
-- apart (24 x 60: hourly for a day; 7 x 1440: daily for a week). No rule:
-- only the newest instance is kept. The newest instance is always kept on
-- top of the rules.
CREATE TABLE retention_rules (
    replication_id   uuid NOT NULL REFERENCES replications (id) ON DELETE CASCADE,
    position         integer NOT NULL CHECK (position BETWEEN 1 AND 16),
    instances        integer NOT NULL CHECK (instances BETWEEN 1 AND 1024),
    distance_minutes integer NOT NULL CHECK (distance_minutes BETWEEN 5 AND 525600),
    PRIMARY KEY (replication_id, position)
);

-- Duplicate VM names are looked up per peer when a replication is configured.
CREATE INDEX replications_peer_name_idx ON replications (peer_id, name) WHERE kind = 'incoming';
