-- Where a gateway's workers share their counters (apim.v1.SharedState): a Redis server. Empty
-- text and 0 mean unset, and all of them unset mean the gateway has none, so every gateway
-- stored before this migration reads back as it was. The password is a secret: it leaves the
-- control plane only in snapshots pushed to the gateway's workers.
ALTER TABLE gateways ADD COLUMN shared_state_redis_address TEXT NOT NULL DEFAULT '';
ALTER TABLE gateways ADD COLUMN shared_state_tls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN shared_state_ca_certificate TEXT NOT NULL DEFAULT '';
ALTER TABLE gateways ADD COLUMN shared_state_username TEXT NOT NULL DEFAULT '';
ALTER TABLE gateways ADD COLUMN shared_state_password TEXT NOT NULL DEFAULT '';
ALTER TABLE gateways ADD COLUMN shared_state_database INTEGER NOT NULL DEFAULT 0;
ALTER TABLE gateways ADD COLUMN shared_state_key_prefix TEXT NOT NULL DEFAULT '';
