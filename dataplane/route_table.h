#pragma once
// Routes compiled from a snapshot: which API serves a request (by host and longest path prefix),
// where its backend is, and the forward-request settings with their defaults applied.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"

namespace apim::dataplane {

struct Backend {
  std::string host;       // Name or address to connect to.
  std::string port;       // Service or port number.
  std::string base_path;  // Joined in front of the rest of the request path; no trailing '/'.
  std::string authority;  // The Host header sent to the backend: host[:port] as in the URL.
  bool tls = false;
};

// What the gateway's tier allows, from the snapshot.
struct TierLimits {
  std::string name;
  bool long_lived_connections = true;
  std::chrono::seconds max_response_duration{0};  // 0: no limit.
  std::chrono::seconds idle_timeout{240};
  uint32_t max_concurrent_streams = 0;  // Per worker; 0: no limit.
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

 private:
  TierLimits tier_;
  std::vector<Route> routes_;  // Most specific first: longer prefixes, then host-specific.
};

}  // namespace apim::dataplane
