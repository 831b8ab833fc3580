-- vrcloud schema, part 1: tenancy, identities, sessions, the replication
-- model read by the API, tasks, and the replica servers that stage data.
-- Every id is a UUID rendered as 36 lowercase characters.

CREATE TABLE orgs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    full_name   text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    is_system   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX orgs_name_key ON orgs (lower(name));
-- Exactly one System org: its administrators are the provider's.
CREATE UNIQUE INDEX orgs_one_system ON orgs (is_system) WHERE is_system;
INSERT INTO orgs (name, full_name, description, is_system)
VALUES ('System', 'System', 'The provider''s own organization', true);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    role          text NOT NULL CHECK (role IN ('sysadmin', 'org-admin', 'org-user')),
    password_hash text NOT NULL,
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_org_name_key ON users (org_id, lower(name));

-- Only the SHA-256 of a session token is stored; the token itself exists
-- only on the client.
CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    client_addr  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Failed logins, counted per window for each (scope, subject): scope
-- 'user-addr' keys on user@org plus client address, 'addr' on the address.
CREATE TABLE login_failures (
    scope        text NOT NULL,
    subject      text NOT NULL,
    window_start timestamptz NOT NULL DEFAULT now(),
    failures     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, subject)
);

CREATE TABLE vdcs (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                    uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    description               text NOT NULL DEFAULT '',
    replication_enabled       boolean NOT NULL DEFAULT true,
    failover_enabled          boolean NOT NULL DEFAULT true,
    test_failover_enabled     boolean NOT NULL DEFAULT true,
    planned_migration_enabled boolean NOT NULL DEFAULT true,
    cpu_limit_mhz             bigint NOT NULL DEFAULT 0,
    memory_limit_mb           bigint NOT NULL DEFAULT 0,
    storage_limit_mb          bigint NOT NULL DEFAULT 0,
    created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX vdcs_org_name_key ON vdcs (org_id, lower(name));
CREATE INDEX vdcs_org_idx ON vdcs (org_id);

-- A paired on-premises site (a vCenter/VR site in the product followed).
CREATE TABLE peers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    vdc_id          uuid NOT NULL REFERENCES vdcs (id) ON DELETE CASCADE,
    site_uuid       uuid NOT NULL,
    site_name       text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    credential_hash bytea,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX peers_vdc_site_key ON peers (vdc_id, site_uuid);
CREATE INDEX peers_org_idx ON peers (org_id);

CREATE TABLE network_mappings (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    peer_id             uuid NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('failover', 'test')),
    position            integer NOT NULL,
    source_network      text NOT NULL,
    target_network_id   uuid NOT NULL,
    target_network_name text NOT NULL,
    UNIQUE (peer_id, kind, position)
);

-- A replica server: a vrcloud-worker that stages replica data.
CREATE TABLE replica_servers (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL,
    traffic_address text NOT NULL DEFAULT '',
    state           text NOT NULL DEFAULT 'connected'
                    CHECK (state IN ('connected', 'disconnected', 'unregistered')),
    registered_at   timestamptz NOT NULL DEFAULT now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT now(),
    bytes_in        bigint NOT NULL DEFAULT 0,
    bytes_out       bigint NOT NULL DEFAULT 0,
    transfer_errors bigint NOT NULL DEFAULT 0
);

-- One row per ReplicationGroup (kind 'incoming': on-prem -> cloud) or
-- FailbackReplicationGroup (kind 'failback': cloud -> on-prem).
CREATE TABLE replications (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind                      text NOT NULL DEFAULT 'incoming'
                              CHECK (kind IN ('incoming', 'failback')),
    org_id                    uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    vdc_id                    uuid NOT NULL REFERENCES vdcs (id) ON DELETE CASCADE,
    peer_id                   uuid NOT NULL REFERENCES peers (id) ON DELETE CASCADE,
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    description               text NOT NULL DEFAULT '',
    rpo_minutes               integer NOT NULL DEFAULT 240 CHECK (rpo_minutes BETWEEN 1 AND 1440),
    quiesce_guest             boolean NOT NULL DEFAULT false,
    network_compression       boolean NOT NULL DEFAULT false,
    placeholder_vapp_id       uuid,
    event_partition_id        uuid NOT NULL DEFAULT gen_random_uuid(),
    replication_state         text NOT NULL DEFAULT 'initialSync',
    replica_server_id         uuid REFERENCES replica_servers (id) ON DELETE SET NULL,
    next_instance_seq         bigint NOT NULL DEFAULT 1,
    paused                    boolean NOT NULL DEFAULT false,
    paused_at                 timestamptz,
    paused_minutes            bigint NOT NULL DEFAULT 0,
    test_recovery_state       text NOT NULL DEFAULT 'none'
                              CHECK (test_recovery_state IN ('unknown', 'none', 'testInProgress',
                                     'complete', 'cleanupInProgress', 'testError', 'cleanupError')),
    recovery_state            text NOT NULL DEFAULT 'notStarted'
                              CHECK (recovery_state IN ('unknown', 'notStarted', 'inProgress',
                                     'error', 'recovered')),
    recovery_completion_time  timestamptz,
    last_test_failover_op_id  uuid,
    source_vm_id              text NOT NULL DEFAULT '',
    source_replication_id     uuid,
    seeded                    boolean NOT NULL DEFAULT false,
    datastore                 text NOT NULL DEFAULT '',
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replications_org_idx ON replications (org_id, kind, created_at, id);
CREATE INDEX replications_vdc_idx ON replications (vdc_id, kind, created_at, id);
CREATE INDEX replications_peer_idx ON replications (peer_id, kind, created_at, id);

CREATE TABLE disks (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    replication_id uuid NOT NULL REFERENCES replications (id) ON DELETE CASCADE,
    device_key     integer NOT NULL,
    name           text NOT NULL,
    size_bytes     bigint NOT NULL CHECK (size_bytes > 0),
    used_bytes     bigint NOT NULL DEFAULT 0,
    datastore_ref  text NOT NULL DEFAULT '',
    UNIQUE (replication_id, device_key)
);

-- A committed point-in-time instance of a replication.
CREATE TABLE instances (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    replication_id      uuid NOT NULL REFERENCES replications (id) ON DELETE CASCADE,
    seq                 bigint NOT NULL,
    transfer_start_time timestamptz NOT NULL,
    transfer_seconds    bigint NOT NULL DEFAULT 0,
    transfer_bytes      bigint NOT NULL DEFAULT 0,
    hash_root           bytea,
    pinned              boolean NOT NULL DEFAULT false,
    committed_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (replication_id, seq)
);

-- vCD Tasks. owner_* describe the object the task acts on.
CREATE TABLE tasks (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id          uuid REFERENCES users (id) ON DELETE SET NULL,
    user_name        text NOT NULL DEFAULT '',
    owner_kind       text NOT NULL,
    owner_id         uuid,
    owner_name       text NOT NULL DEFAULT '',
    operation        text NOT NULL,
    operation_name   text NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'preRunning', 'running', 'success',
                                       'error', 'canceled', 'aborted')),
    progress         integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    start_time       timestamptz NOT NULL DEFAULT now(),
    end_time         timestamptz,
    expiry_time      timestamptz NOT NULL DEFAULT now() + interval '90 days',
    cancel_requested boolean NOT NULL DEFAULT false,
    operation_key    text,
    error_major      integer,
    error_minor      text,
    error_vendor     text,
    error_message    text,
    details          text NOT NULL DEFAULT ''
);
CREATE INDEX tasks_org_idx ON tasks (org_id, start_time DESC, id);
CREATE INDEX tasks_owner_idx ON tasks (owner_id, start_time DESC);
CREATE UNIQUE INDEX tasks_operation_key ON tasks (user_id, operation_key)
    WHERE operation_key IS NOT NULL;

-- Timestamps on the wire: UTC, milliseconds, literal Z (2016-04-05T10:11:12.345Z).
CREATE FUNCTION vr_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
