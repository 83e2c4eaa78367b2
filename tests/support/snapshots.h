#pragma once
// Snapshots for the data plane's unit tests: a valid tier, APIs, policies and subscriptions in a
// line each, so a test states only the settings it is about. Header-only, for tests that link
// apim_dataplane (which brings the proto and apim_common).

#include <cstdint>
#include <initializer_list>
#include <string>

#include "apim/v1/resources.pb.h"
#include "common/sha256.h"

namespace apim::testing {

// A tier that allows long-lived connections, with a 15 s heartbeat and no stream limit.
inline v1::Tier StreamingTier() {
  v1::Tier tier;
  tier.set_name("standard");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(240);
  tier.set_heartbeat_interval_seconds(15);
  return tier;
}

// A tier without long-lived connections: every response is cut after 30 s.
inline v1::Tier ConsumptionTier() {
  v1::Tier tier;
  tier.set_name("consumption");
  tier.set_long_lived_connections(false);
  tier.set_max_response_duration_seconds(30);
  tier.set_idle_timeout_seconds(240);
  return tier;
}

inline v1::Snapshot SnapshotOn(const v1::Tier& tier) {
  v1::Snapshot snapshot;
  snapshot.set_version(1);
  snapshot.set_gateway("gw");
  *snapshot.mutable_tier() = tier;
  return snapshot;
}

// Adds an API serving `path_prefix` (any host) from `backend_url`; returns it for more settings.
inline v1::Api& AddApi(v1::Snapshot& snapshot, const std::string& name,
                       const std::string& path_prefix,
                       const std::string& backend_url = "http://backend.internal:8080") {
  v1::Api& api = *snapshot.add_apis();
  api.set_name(name);
  api.set_path_prefix(path_prefix);
  api.set_backend_url(backend_url);
  return api;
}

// `scope` is "global" or "api:NAME"; `xml` a whole <policies> document.
inline void AddPolicy(v1::Snapshot& snapshot, const std::string& scope, const std::string& xml) {
  v1::Policy& policy = *snapshot.add_policies();
  policy.set_scope(scope);
  policy.set_xml(xml);
}

// A subscription whose key is `key` (the snapshot holds its SHA-256), covering `apis`.
inline v1::SubscriptionGrant& AddSubscription(v1::Snapshot& snapshot, const std::string& name,
                                              const std::string& key,
                                              std::initializer_list<std::string> apis,
                                              uint32_t max_concurrent_streams = 0) {
  v1::SubscriptionGrant& grant = *snapshot.add_subscriptions();
  grant.set_name(name);
  grant.add_key_sha256(Sha256Hex(key));
  for (const std::string& api : apis) grant.add_apis(api);
  grant.set_max_concurrent_streams(max_concurrent_streams);
  return grant;
}

}  // namespace apim::testing
