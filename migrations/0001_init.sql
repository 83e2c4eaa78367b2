-- The control plane's resources. Every row carries the store revision of its last write (its
-- etag) and creation/update times in Unix milliseconds.

-- One row: bumped by every committed change, so workers can tell which snapshot is newer.
CREATE TABLE store_revision (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

-- Control-plane secrets and settings, e.g. the admin token's hash.
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE tiers (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  long_lived_connections INTEGER NOT NULL,
  max_response_duration_seconds INTEGER NOT NULL,
  idle_timeout_seconds INTEGER NOT NULL,
  heartbeat_interval_seconds INTEGER NOT NULL,
  max_concurrent_streams INTEGER NOT NULL,
  built_in INTEGER NOT NULL DEFAULT 0,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);

CREATE TABLE gateways (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL DEFAULT '',
  tier TEXT NOT NULL REFERENCES tiers (name) ON DELETE RESTRICT,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);
CREATE INDEX gateways_by_tier ON gateways (tier);

-- Optional forward-request settings are NULL when unset, so the documented default applies.
CREATE TABLE apis (
  name TEXT PRIMARY KEY,
  display_name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  path_prefix TEXT NOT NULL,
  host TEXT NOT NULL DEFAULT '',
  backend_url TEXT NOT NULL,
  sse INTEGER NOT NULL,
  timeout_seconds INTEGER,
  buffer_response INTEGER,
  fail_on_error_status_code INTEGER,
  buffer_request_body INTEGER,
  heartbeat_interval_seconds INTEGER,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL,
  UNIQUE (host, path_prefix)
);

-- Which gateways serve which API; position keeps the order the user gave.
CREATE TABLE api_gateways (
  api TEXT NOT NULL REFERENCES apis (name) ON DELETE CASCADE,
  gateway TEXT NOT NULL REFERENCES gateways (name) ON DELETE RESTRICT,
  position INTEGER NOT NULL,
  PRIMARY KEY (api, gateway)
);
CREATE INDEX api_gateways_by_gateway ON api_gateways (gateway);

-- Settings and policies are keyed by scope ("global", "api:NAME", "operation:API/OP"); the api
-- column ties a scoped row to its API so deleting the API deletes them.
CREATE TABLE diagnostic_settings (
  scope TEXT PRIMARY KEY,
  api TEXT REFERENCES apis (name) ON DELETE CASCADE,
  sampling_percentage INTEGER,
  verbosity INTEGER NOT NULL,
  log_client_ip INTEGER NOT NULL,
  headers TEXT NOT NULL,
  request_body_bytes INTEGER NOT NULL,
  response_body_bytes INTEGER NOT NULL,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);

CREATE TABLE cache_settings (
  scope TEXT PRIMARY KEY,
  api TEXT REFERENCES apis (name) ON DELETE CASCADE,
  enabled INTEGER NOT NULL,
  default_ttl_seconds INTEGER,
  max_entry_bytes INTEGER,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);

CREATE TABLE policies (
  scope TEXT PRIMARY KEY,
  api TEXT REFERENCES apis (name) ON DELETE CASCADE,
  xml TEXT NOT NULL,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);
