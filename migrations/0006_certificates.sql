-- TLS certificates workers serve to clients (apim.v1.Certificate), and the hostnames each gateway
-- binds to them. The private key is a secret: it leaves the control plane only in snapshots
-- pushed to workers. Subject, names and dates are read from the chain, not stored.
CREATE TABLE certificates (
  name TEXT PRIMARY KEY,
  certificate_chain TEXT NOT NULL,
  private_key TEXT NOT NULL,
  revision INTEGER NOT NULL,
  create_time_ms INTEGER NOT NULL,
  update_time_ms INTEGER NOT NULL
);

-- A gateway's hostnames (apim.v1.HostnameBinding); position keeps the order the user gave. A
-- certificate still bound is not deleted (the store says which gateway holds it; RESTRICT too).
CREATE TABLE gateway_hostnames (
  gateway TEXT NOT NULL REFERENCES gateways (name) ON DELETE CASCADE,
  hostname TEXT NOT NULL,
  certificate TEXT NOT NULL REFERENCES certificates (name) ON DELETE RESTRICT,
  is_default INTEGER NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (gateway, hostname)
);
CREATE INDEX gateway_hostnames_by_certificate ON gateway_hostnames (certificate);
