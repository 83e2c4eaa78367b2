-- Products group APIs; subscriptions grant access with two keys (only their SHA-256 is kept).
ALTER TABLE apis ADD COLUMN subscription_required INTEGER NOT NULL DEFAULT 0;

CREATE TABLE products (
  name TEXT PRIMARY KEY,
  display_name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);

CREATE TABLE product_apis (
  product TEXT NOT NULL REFERENCES products (name) ON DELETE CASCADE,
  api TEXT NOT NULL REFERENCES apis (name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  PRIMARY KEY (product, api)
);

-- scope is "all", "api:NAME" or "product:NAME"; the api/product columns tie a scoped
-- subscription to what it covers, so deleting that deletes the subscription.
CREATE TABLE subscriptions (
  name TEXT PRIMARY KEY,
  display_name TEXT NOT NULL DEFAULT '',
  scope TEXT NOT NULL,
  api TEXT REFERENCES apis (name) ON DELETE CASCADE,
  product TEXT REFERENCES products (name) ON DELETE CASCADE,
  suspended INTEGER NOT NULL DEFAULT 0,
  max_concurrent_streams INTEGER NOT NULL DEFAULT 0,
  primary_key_sha256 TEXT NOT NULL,
  secondary_key_sha256 TEXT NOT NULL,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);
