-- The built-in tiers, after Azure API Management's. Only consumption refuses long-lived
-- connections and cuts every response at 30 s; idle timeout is the Azure load balancer's 240 s.
UPDATE store_revision SET revision = revision + 1;

INSERT INTO tiers (name, description, long_lived_connections, max_response_duration_seconds,
                   idle_timeout_seconds, heartbeat_interval_seconds, max_concurrent_streams,
                   built_in, revision, create_time_ms, update_time_ms)
SELECT t.name, t.description, t.long_lived, t.max_response, 240, t.heartbeat, t.max_streams, 1,
       (SELECT revision FROM store_revision), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
       CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
FROM (
  SELECT 'consumption' AS name, 'Serverless; no long-lived connections' AS description,
         0 AS long_lived, 30 AS max_response, 0 AS heartbeat, 0 AS max_streams
  UNION ALL SELECT 'developer', 'Non-production; long-lived connections', 1, 0, 30, 100
  UNION ALL SELECT 'basic', 'Entry production', 1, 0, 30, 1000
  UNION ALL SELECT 'standard', 'Medium production', 1, 0, 30, 5000
  UNION ALL SELECT 'premium', 'High-volume, multi-region', 1, 0, 30, 20000
  UNION ALL SELECT 'basicv2', 'Entry production (v2)', 1, 0, 30, 1000
  UNION ALL SELECT 'standardv2', 'Medium production (v2)', 1, 0, 30, 5000
  UNION ALL SELECT 'premiumv2', 'High-volume (v2)', 1, 0, 30, 20000
) AS t;
