-- TLS to an API's https:// backend (apim.v1.BackendTls). Empty text and 0 mean unset. The client
-- key is a secret: it leaves the control plane only in snapshots pushed to workers.
ALTER TABLE apis ADD COLUMN backend_ca_certificate TEXT NOT NULL DEFAULT '';
ALTER TABLE apis ADD COLUMN backend_client_certificate TEXT NOT NULL DEFAULT '';
ALTER TABLE apis ADD COLUMN backend_client_key TEXT NOT NULL DEFAULT '';
ALTER TABLE apis ADD COLUMN backend_server_name TEXT NOT NULL DEFAULT '';
ALTER TABLE apis ADD COLUMN backend_skip_verification INTEGER NOT NULL DEFAULT 0;
