-- vrcloud schema, part 6: proxies look a site up by the SHA-256 of the
-- credential it presents (POST /api/internal/sites/verify, docs/tunnels.md).
CREATE INDEX peers_credential_hash_idx ON peers (credential_hash)
    WHERE credential_hash IS NOT NULL AND revoked_at IS NULL;
