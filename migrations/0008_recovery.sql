-- vrcloud schema, part 8: the disk images of recovered and test VMs
-- (docs/recovery.md). A failover, planned migration or test failover
-- writes one raw image per disk of the replication under the worker's
-- [worker] recovered_dir; the worker names them in the job's result and
-- the API records them here with the vApp the job made.
CREATE TABLE vapp_disks (
    vapp_id     uuid NOT NULL REFERENCES vapps (id) ON DELETE CASCADE,
    device_key  integer NOT NULL,
    path        text NOT NULL,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    PRIMARY KEY (vapp_id, device_key)
);
