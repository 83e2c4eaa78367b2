#pragma once
// Admission: what the gateway decides about a request before any backend is contacted. Routing,
// the subscription key, the tier's rules for long-lived connections, stream limits, the inbound
// policy and the response cache, as one function from the request and the snapshot to a decision
// value: an Admission (forward it, and how) or the answer to send instead. No I/O: the codec
// that received the request writes the answer, and the exchange forwards an admission.

#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "dataplane/config/route_table.h"
#include "dataplane/config/snapshot_store.h"
#include "dataplane/policy/policy_runtime.h"
#include "dataplane/policy/rate_limiter.h"
#include "dataplane/policy/response_cache.h"
#include "dataplane/shared_state/shared_counters.h"

namespace apim::dataplane {

namespace http = boost::beast::http;

// The request is to be forwarded. Points into the snapshot it was admitted under, which the
// exchange holds for its whole life.
struct Admission {
  // The API's route, or `adjusted_route` when the policy's backend section (forward-request) or
  // validate-content (which needs the whole body) changes its settings for this request.
  const Route* route = nullptr;
  std::unique_ptr<Route> adjusted_route;
  const SubscriptionGrant* subscription = nullptr;
  SubscriptionStreamSlot stream_slot;
  // validate-content: checked once the body was read whole; with whether a Content-Type came.
  const policy::ValidateContent* validate_content = nullptr;
  bool content_type_missing = false;
  // Set when cache-lookup missed: cache-store may fill this entry.
  std::string cache_key;
  // The quotas with a bandwidth this call counts against: charged when the exchange ends.
  std::vector<CallCount> bandwidth;
};

// The request is answered instead: a problem, a policy's return-response or failed check, or a
// cached response.
struct Answer {
  http::response<http::string_body> response;
  std::string error;     // What the access log says; empty for a cache hit.
  std::string_view api;  // The API the request was routed to, if it was.
  // How the API logs, once its policy ran; null before (the default logging).
  const DiagnosticConfig* diagnostics = nullptr;
  // The quotas with a bandwidth a call answered after them (a return-response, a cache hit)
  // counts against: its bytes are charged too.
  std::vector<CallCount> bandwidth{};
};

// What admission needs besides the request and the snapshot; shared by the worker's threads.
struct AdmissionServices {
  RateLimiter& rate_limiter;
  SubscriptionStreams& subscription_streams;
  ResponseCache& cache;
  // The worker's open streams, for the tier's limit; counted up when a refusal is for streams.
  const std::atomic<int64_t>& active_streams;
  std::atomic<uint64_t>& streams_refused;
  // Set when limits count on the shared-state server: the rate limits' calls (see ApplyInbound)
  // and the stream slot a subscription's stream needs are gathered here instead of counted, and
  // the decision stands only if SharedCounters then admits them.
  LimitRequest* deferred = nullptr;
};

// What a request brings to admission. `request` is changed on the way: the subscription key and
// hop-by-hop headers are taken out, the target loses its fragment, and the inbound policy's
// set-header steps apply.
struct AdmissionRequest {
  http::request_header<>& request;
  bool has_body = false;  // A body follows the head (and has not been read).
  const std::string& client_ip;
  // The access log's copy of the headers the diagnostic setting names, filled in on the way.
  std::vector<std::pair<std::string, std::string>>* logged_headers = nullptr;
};

using AdmissionDecision = std::variant<Admission, Answer>;

// The answer when the shared limits refused what Admit decided: 429 for spent calls or a
// subscription's streams all open, 503 when the server could not count (fail closed).
Answer RefusedByLimits(const LimitVerdict& verdict, const LimitRequest& request,
                       AdmissionDecision decision, unsigned version);

// `snapshot` is null while the worker has no configuration.
AdmissionDecision Admit(AdmissionRequest in, const RuntimeSnapshot* snapshot,
                        AdmissionServices& services, std::chrono::steady_clock::time_point now);

}  // namespace apim::dataplane
