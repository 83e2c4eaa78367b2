#pragma once
// Routes compiled from a snapshot: which API serves a request (by host and longest path prefix),
// where its backend is, and the forward-request settings with their defaults applied.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "common/policy.h"
#include "dataplane/backend/backend_tls.h"

namespace apim::dataplane {

struct Backend {
  std::string host;       // Name or address to connect to.
  std::string port;       // Service or port number.
  std::string base_path;  // Joined in front of the rest of the request path; no trailing '/'.
  std::string authority;  // The Host header sent to the backend: host[:port] as in the URL.
  bool tls = false;       // https: connections are made through tls_context.
  std::shared_ptr<BackendTlsContext> tls_context;
};

// What the gateway's tier allows, from the snapshot.
struct TierLimits {
  std::string name;
  bool long_lived_connections = true;
  std::chrono::seconds max_response_duration{0};  // 0: no limit.
  std::chrono::seconds idle_timeout{240};
  uint32_t max_concurrent_streams = 0;  // Per worker; 0: no limit.
};

// How requests of an API are logged: its diagnostic setting, else the global one.
struct DiagnosticConfig {
  bool configured = false;  // No setting anywhere: log every request with the client IP.
  uint32_t sampling_percentage = 100;
  v1::Verbosity verbosity = v1::VERBOSITY_INFORMATION;
  bool log_client_ip = true;
  std::vector<std::string> headers;
  uint32_t request_body_bytes = 0;  // Always 0 for SSE APIs.
  uint32_t response_body_bytes = 0;
};

// Response caching of an API: its cache setting, else the global one. Always off for SSE APIs.
struct CacheConfig {
  bool enabled = false;
  std::chrono::seconds default_ttl{60};
  uint64_t max_entry_bytes = 1 << 20;
};

struct Route {
  std::string api;
  std::string host;  // Empty matches any host.
  std::string path_prefix;
  Backend backend;
  bool sse = false;
  std::chrono::seconds timeout{300};  // Until the backend's response headers arrive.
  bool buffer_response = true;        // Never applies to text/event-stream responses.
  bool fail_on_error_status_code = false;
  bool buffer_request_body = false;
  // Comment written between events of a quiet stream (the API's setting, else the tier's); 0: off.
  std::chrono::seconds heartbeat_interval{0};
  // The effective policy (global merged into the API's through <base/>), compiled once. For SSE
  // APIs the steps that would buffer or cache are left out.
  std::shared_ptr<const policy::Document> policy;
  DiagnosticConfig diagnostics;
  CacheConfig cache;
  bool subscription_required = false;
};

// A subscription as a worker checks it: which APIs its keys open, and its stream limit.
struct SubscriptionGrant {
  std::string name;
  std::unordered_set<std::string> apis;
  uint32_t max_concurrent_streams = 0;
};

class RouteTable {
 public:
  static absl::StatusOr<RouteTable> Build(const v1::Snapshot& snapshot);

  // The route for a request, or nullptr. `host` may carry a port; `target` a query.
  const Route* Match(std::string_view host, std::string_view target) const;

  // The backend target for a request matched to `route`: its base path joined to the rest of the
  // request path, with the query kept.
  static std::string BackendTarget(const Route& route, std::string_view target);

  size_t size() const { return routes_.size(); }
  const TierLimits& tier() const { return tier_; }
  // The subscription whose key has this SHA-256, or null.
  const SubscriptionGrant* FindSubscription(const std::string& key_sha256) const;

 private:
  TierLimits tier_;
  std::vector<Route> routes_;
  std::vector<SubscriptionGrant> subscriptions_;
  std::unordered_map<std::string, size_t>
      subscription_by_key_;  // SHA-256 -> index  // Most specific first: longer prefixes, then
                             // host-specific.
};

}  // namespace apim::dataplane
