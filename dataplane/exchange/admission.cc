#include "dataplane/exchange/admission.h"

#include "common/sha256.h"
#include "common/str_cat.h"
#include "dataplane/exchange/http_forwarding.h"
#include "dataplane/exchange/problem.h"
#include "dataplane/exchange/request_target.h"

namespace apim::dataplane {
namespace {

using Clock = std::chrono::steady_clock;

Answer Refuse(const http::request_header<>& request, http::status status, std::string_view type,
              std::string_view title, std::string detail, std::string_view api = {}) {
  Answer answer{Problem(status, type, title, detail, request.version()), std::move(detail), api};
  return answer;
}

// A subscription key, in the header or the query, reaches neither the backend nor a log, whether
// the API asks for one or not. The header wins over the query.
std::string TakeKeyFrom(http::request_header<>& request) {
  static constexpr std::string_view kKeyHeader = "Ocp-Apim-Subscription-Key";
  std::string target(WithoutFragment(request.target()));
  std::string key = TakeSubscriptionKey(target);
  if (auto header = request.find(kKeyHeader); header != request.end()) {
    key = std::string(header->value());
    request.erase(kKeyHeader);
  }
  // Both take-outs only shorten the target: rewrite it only when one did.
  if (target.size() != request.target().size()) request.target(target);
  return key;
}

// For an API that requires one: the subscription the key opens, or the 401 to answer.
std::variant<const SubscriptionGrant*, Answer> CheckSubscription(
    const http::request_header<>& request, const Route& route, const RouteTable& routes,
    const std::string& key) {
  if (key.empty()) {
    return Refuse(request, http::status::unauthorized, "subscription-key-missing",
                  "Subscription key required",
                  StrCat("api \"", route.api,
                         "\" requires a subscription key: send it in the Ocp-Apim-Subscription-Key "
                         "header or the subscription-key query parameter"),
                  route.api);
  }
  const SubscriptionGrant* grant = routes.FindSubscription(Sha256Hex(key));
  if (grant == nullptr || !grant->apis.contains(route.api)) {
    return Refuse(
        request, http::status::unauthorized, "subscription-key-invalid", "Invalid subscription key",
        StrCat("the subscription key is not valid for api \"", route.api, "\""), route.api);
  }
  return grant;
}

// Why the request is a long-lived one (a stream or an upgrade); empty if it is not.
std::string_view StreamReason(const http::request_header<>& request, const Route& route) {
  if (route.sse) return "the API is declared as a server-sent events API";
  if (AcceptsEventStream(request)) return "the request asks for text/event-stream";
  if (IsWebSocketUpgrade(request)) return "the request asks for a WebSocket upgrade";
  return "";
}

Answer CachedAnswer(const CachedResponse& cached, unsigned version, const Route& route,
                    Clock::time_point now) {
  http::response<http::string_body> response{static_cast<http::status>(cached.status), version};
  for (const auto& [name, value] : cached.headers) response.insert(name, value);
  response.set(http::field::age,
               std::to_string(
                   std::chrono::duration_cast<std::chrono::seconds>(now - cached.stored).count()));
  response.set("X-Cache", "HIT");
  response.body() = cached.body;
  response.prepare_payload();
  return Answer{std::move(response), "", route.api, &route.diagnostics};
}

Answer TooManySubscriptionStreams(unsigned version, const std::string& subscription,
                                  uint32_t max_streams, std::string_view api) {
  std::string detail = StrCat("subscription \"", subscription, "\" already has the ", max_streams,
                              " open streams it may hold; close one or retry later");
  return Answer{Problem(http::status::too_many_requests, "too-many-subscription-streams",
                        "Too many streams", detail, version),
                std::move(detail), api};
}

}  // namespace

Answer RefusedByLimits(const LimitVerdict& verdict, const LimitRequest& request,
                       AdmissionDecision decision, unsigned version) {
  std::string_view api;
  const DiagnosticConfig* diagnostics = nullptr;
  if (const Admission* admitted = std::get_if<Admission>(&decision)) {
    api = admitted->route->api;
    diagnostics = &admitted->route->diagnostics;
  } else {
    api = std::get<Answer>(decision).api;
    diagnostics = std::get<Answer>(decision).diagnostics;
  }
  Answer answer;
  switch (verdict.outcome) {
    case LimitVerdict::Outcome::kCallsSpent:
      answer = Answer{TooManyRequests(verdict.retry_after, std::string(api), version), "", api};
      break;
    case LimitVerdict::Outcome::kQuotaSpent:
      answer = Answer{QuotaExceeded(verdict.retry_after, std::string(api), version), "", api};
      break;
    case LimitVerdict::Outcome::kStreamsFull:
      answer = TooManySubscriptionStreams(version, request.stream_subscription, request.max_streams,
                                          api);
      break;
    case LimitVerdict::Outcome::kAdmitted:
    case LimitVerdict::Outcome::kUnavailable: {
      auto problem = Problem(
          http::status::service_unavailable, "shared-state-unavailable", "Limits cannot be counted",
          StrCat("the limits of api \"", api,
                 "\" are counted across the gateway's workers, and the shared-state server "
                 "cannot count now; retry later"),
          version);
      problem.set(http::field::retry_after, "1");
      answer = Answer{std::move(problem), StrCat("shared state unavailable: ", verdict.unavailable),
                      api};
      break;
    }
  }
  answer.diagnostics = diagnostics;
  return answer;
}

AdmissionDecision Admit(AdmissionRequest in, const RuntimeSnapshot* snapshot,
                        AdmissionServices& services, Clock::time_point now) {
  http::request_header<>& request = in.request;
  if (std::string_view refused = RefusedTargetReason(request.target()); !refused.empty()) {
    return Refuse(request, http::status::bad_request, "bad-request-target", "Bad request target",
                  std::string(refused));
  }
  const std::string subscription_key = TakeKeyFrom(request);
  const Route* route =
      snapshot ? snapshot->routes.Match(request[http::field::host], request.target()) : nullptr;
  if (route == nullptr) {
    std::string detail = StrCat("no API is published at ", request.target());
    if (!snapshot) detail.append(" (this worker has no configuration yet)");
    return Refuse(request, http::status::not_found, "no-api", "No API", std::move(detail));
  }
  Admission admission;
  if (route->subscription_required) {
    auto checked = CheckSubscription(request, *route, snapshot->routes, subscription_key);
    if (Answer* refused = std::get_if<Answer>(&checked)) return std::move(*refused);
    admission.subscription = std::get<const SubscriptionGrant*>(checked);
  }

  // Tier rules come before the backend is contacted.
  const TierLimits& tier = snapshot->routes.tier();
  const std::string_view stream_reason = StreamReason(request, *route);
  if (!stream_reason.empty() && !tier.long_lived_connections) {
    return Refuse(request, http::status::not_implemented, "long-lived-connections-not-supported",
                  "Long-lived connections not supported",
                  StrCat("this gateway's tier \"", tier.name,
                         "\" does not allow long-lived connections, and ", stream_reason,
                         "; use a tier that allows them (for example standard or premium)"),
                  route->api);
  }
  const SubscriptionGrant* subscription = admission.subscription;
  if (!stream_reason.empty() && subscription != nullptr &&
      subscription->max_concurrent_streams > 0) {
    if (services.deferred != nullptr) {
      services.deferred->stream_subscription = subscription->name;
      services.deferred->max_streams = subscription->max_concurrent_streams;
    } else if (!services.subscription_streams.TryOpen(subscription->name,
                                                      subscription->max_concurrent_streams)) {
      ++services.streams_refused;
      return TooManySubscriptionStreams(request.version(), subscription->name,
                                        subscription->max_concurrent_streams, route->api);
    } else {
      admission.stream_slot =
          SubscriptionStreamSlot(services.subscription_streams, subscription->name);
    }
  }
  if (!stream_reason.empty() && tier.max_concurrent_streams > 0 &&
      services.active_streams.load() >= tier.max_concurrent_streams) {
    ++services.streams_refused;
    return Refuse(request, http::status::service_unavailable, "too-many-streams",
                  "Too many streams",
                  StrCat("this worker already holds the ", tier.max_concurrent_streams,
                         " concurrent streams its tier \"", tier.name, "\" allows; retry later"),
                  route->api);
  }

  // The inbound policy, on the request as the backend would get it.
  RemoveHopByHopHeaders(request);
  if (in.logged_headers != nullptr) {
    for (const std::string& name : route->diagnostics.headers) {
      if (auto found = request.find(name); found != request.end()) {
        in.logged_headers->emplace_back(name, std::string(found->value()));
      }
    }
  }
  InboundOutcome inbound =
      ApplyInbound(route->policy->inbound, request, request.target(), in.client_ip, route->api,
                   subscription ? subscription->name : std::string(), services.rate_limiter,
                   services.deferred ? &services.deferred->calls : nullptr, request.version());
  if (inbound.answer) {
    Answer answer{std::move(*inbound.answer), "", route->api, &route->diagnostics};
    answer.bandwidth = std::move(inbound.bandwidth);
    return answer;
  }
  admission.bandwidth = std::move(inbound.bandwidth);
  // forward-request and validate-content adjust the API's settings for this request only.
  admission.route = route;
  if (!route->policy->backend.steps.empty() || inbound.validate_content) {
    admission.adjusted_route = std::make_unique<Route>(*route);
    ApplyBackend(route->policy->backend, *admission.adjusted_route);
    if (inbound.validate_content && in.has_body) {
      admission.validate_content = inbound.validate_content;
      admission.content_type_missing = request[http::field::content_type].empty();
      admission.adjusted_route->buffer_request_body = true;  // It needs the whole body.
    }
    admission.route = admission.adjusted_route.get();
  }
  if (inbound.cache_lookup && route->cache.enabled && request.method() == http::verb::get) {
    admission.cache_key = CacheKey(route->api, request.target(), request, *inbound.cache_lookup);
    if (auto hit = services.cache.Lookup(admission.cache_key, now)) {
      Answer answer = CachedAnswer(*hit, request.version(), *route, now);
      answer.bandwidth = std::move(admission.bandwidth);
      return answer;
    }
  }
  return admission;
}

}  // namespace apim::dataplane
