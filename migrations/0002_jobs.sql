-- vrcloud schema, part 2: the job outbox behind every asynchronous Task,
-- the vApps that replications place and recover, and the credentials of
-- the services (workers, proxies) that call the internal API.

-- One row per unit of work. A mutating request writes its state change,
-- its Task and its job in one transaction; the job is then published to
-- the Redis stream. Jobs of one lane (one replication, VDC, peer or
-- server) run one at a time in seq order: only the oldest open job of a
-- lane is ever published.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq           bigserial NOT NULL UNIQUE,
    task_id       uuid NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE,
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    lane          text NOT NULL,
    action        text NOT NULL,
    params        jsonb NOT NULL DEFAULT '{}',
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled', 'dead')),
    deliveries    integer NOT NULL DEFAULT 0,
    worker_id     uuid REFERENCES replica_servers (id) ON DELETE SET NULL,
    published_at  timestamptz,
    started_at    timestamptz,
    heartbeat_at  timestamptz,
    finished_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_open_lane_idx ON jobs (lane, seq) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_open_idx ON jobs (state, published_at) WHERE state IN ('queued', 'running');

-- vApps in the cloud: the placeholder a replication reserves, the VM a
-- failover recovers, the image a test failover builds.
CREATE TABLE vapps (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    vdc_id         uuid NOT NULL REFERENCES vdcs (id) ON DELETE CASCADE,
    replication_id uuid REFERENCES replications (id) ON DELETE SET NULL,
    kind           text NOT NULL CHECK (kind IN ('placeholder', 'recovered', 'test')),
    name           text NOT NULL,
    power_state    text NOT NULL DEFAULT 'off' CHECK (power_state IN ('off', 'on')),
    instance_id    uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE INDEX vapps_replication_idx ON vapps (replication_id) WHERE deleted_at IS NULL;
CREATE INDEX vapps_vdc_idx ON vapps (vdc_id) WHERE deleted_at IS NULL;

-- Credentials of vrcloud's own services. Only the SHA-256 of the token is kept.
CREATE TABLE service_credentials (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    kind        text NOT NULL CHECK (kind IN ('worker', 'proxy')),
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- A replica server registers under the name of its service credential.
CREATE UNIQUE INDEX replica_servers_name_key ON replica_servers (name);

-- ReplicationState takes the state machine's tokens (src/engine/state.c).
ALTER TABLE replications ADD CONSTRAINT replications_replication_state_check
    CHECK (replication_state IN ('initialSync', 'fullSync', 'ok', 'error', 'notActive'));
