-- Tokens workers present to join a gateway. Only a SHA-256 of each is kept; rotating replaces it.
CREATE TABLE gateway_tokens (
  gateway TEXT PRIMARY KEY REFERENCES gateways (name) ON DELETE CASCADE,
  sha256 TEXT NOT NULL,
  create_time_ms INTEGER NOT NULL
);
