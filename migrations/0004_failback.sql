-- vrcloud schema, part 4: failback replications, staged network mappings
-- and the datastore a replica was moved to.

-- A replication is reversed at most once at a time: one failback row per
-- incoming replication (docs/state-machine.md, AlreadyReversed).
CREATE UNIQUE INDEX replications_one_failback ON replications (source_replication_id)
    WHERE kind = 'failback';

-- The replications a replica server stages (VrServerStatistics, and
-- unregistering a server hands them to another).
CREATE INDEX replications_server_idx ON replications (replica_server_id)
    WHERE replica_server_id IS NOT NULL;

-- The server that manages the datastore of a replica (the VimServerRef of
-- MoveReplicationGroupParams/NewDatastore, as the provider named it);
-- replications.datastore holds the datastore's MoRef.
ALTER TABLE replications ADD COLUMN datastore_server_href text NOT NULL DEFAULT '';

-- Network mappings a setNetworkMappings job will put in place. They wait
-- here, invisible, until the job succeeds; then they replace the peer's
-- mappings, and either way they are removed when the job ends.
CREATE TABLE network_mapping_staging (
    job_id              uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('failover', 'test')),
    position            integer NOT NULL,
    source_network      text NOT NULL,
    target_network_id   uuid NOT NULL,
    target_network_name text NOT NULL,
    PRIMARY KEY (job_id, kind, position)
);
