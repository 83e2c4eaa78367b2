#pragma once
// Runs a route's compiled policy on a request and its response: the inbound steps (set-header,
// check-header, rate limits, return-response, and noting cache-lookup and validate-content for
// the session), the backend forward-request overrides, and the outbound header steps.

#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/policy.h"
#include "dataplane/config/route_table.h"
#include "dataplane/policy/rate_limiter.h"

namespace apim::dataplane {

namespace http = boost::beast::http;

// Open streams per subscription, shared by the worker's threads (limits are per worker).
class SubscriptionStreams {
 public:
  // Counts a stream for `subscription`; false, counting nothing, when `limit` are already open.
  bool TryOpen(const std::string& subscription, uint32_t limit);
  void Close(const std::string& subscription);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> open_;
};

// What the inbound section decided.
struct InboundOutcome {
  // Answer this instead of forwarding (a failed check, a rate limit, a return-response).
  std::optional<http::response<http::string_body>> answer;
  const policy::CacheLookup* cache_lookup = nullptr;
  const policy::ValidateContent* validate_content = nullptr;
  // The quotas with a bandwidth the call was counted under: its bytes are charged to them when
  // its exchange ends.
  std::vector<CallCount> bandwidth;
};

// Rate limits and quotas count per subscription when the request has one (`subscription`
// non-empty): in `limiter` as each step comes, or, with `deferred`, gathered there for the caller
// to count on the shared-state server (the steps after them run meanwhile, and an answer they
// make stands only if the counts then admit the call).
InboundOutcome ApplyInbound(const policy::Section& inbound, http::fields& request,
                            std::string_view target, const std::string& client_ip,
                            const std::string& api, const std::string& subscription,
                            RateLimiter& limiter, std::vector<CallCount>* deferred,
                            unsigned version);

// 429 with Retry-After, for a spent rate limit of `api`.
http::response<http::string_body> TooManyRequests(std::chrono::seconds retry_after,
                                                  const std::string& api, unsigned version);

// 403 with Retry-After, for a spent quota of `api`.
http::response<http::string_body> QuotaExceeded(std::chrono::seconds retry_after,
                                                const std::string& api, unsigned version);

// The refusal of a spent `call`: QuotaExceeded for a quota, else TooManyRequests.
http::response<http::string_body> LimitSpent(const CallCount& call,
                                             std::chrono::seconds retry_after,
                                             const std::string& api, unsigned version);

// forward-request in the backend section overrides the API's settings.
void ApplyBackend(const policy::Section& backend, Route& route);

void ApplyOutboundHeaders(const policy::Section& outbound, http::fields& response);
const policy::CacheStore* FindCacheStore(const policy::Section& outbound);

// The cache key of a GET: the API, the path, the query (only the listed parameters, if any are
// listed) and the listed request headers.
std::string CacheKey(const std::string& api, std::string_view target, const http::fields& request,
                     const policy::CacheLookup& lookup);

}  // namespace apim::dataplane
