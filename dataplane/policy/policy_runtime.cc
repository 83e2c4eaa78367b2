#include "dataplane/policy/policy_runtime.h"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <variant>

#include "common/str_cat.h"
#include "dataplane/exchange/problem.h"

namespace apim::dataplane {
namespace {

std::string QueryParameter(std::string_view target, std::string_view name) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return "";
  for (const auto& param : url->params()) {
    if (param.key == name) return std::string(param.value);
  }
  return "";
}

std::string CounterKeyValue(const policy::CounterKey& key, const http::fields& request,
                            std::string_view target, const std::string& client_ip) {
  switch (key.kind) {
    case policy::CounterKey::Kind::kClientIp:
      return client_ip;
    case policy::CounterKey::Kind::kHeader:
      return std::string(request[key.value]);
    case policy::CounterKey::Kind::kQueryParameter:
      return QueryParameter(target, key.value);
    case policy::CounterKey::Kind::kLiteral:
      return key.value;
  }
  return key.value;
}

// A message's fields as set-header edits them (Beast compares names case-insensitively).
struct FieldsHeaderList {
  http::fields& fields;
  bool Contains(std::string_view name) const { return fields.find(name) != fields.end(); }
  void RemoveAll(std::string_view name) { fields.erase(name); }
  void Add(std::string_view name, std::string_view value) { fields.insert(name, value); }
};

void SetHeader(const policy::SetHeader& step, http::fields& fields) {
  policy::ApplySetHeader(step, FieldsHeaderList{fields});
}

}  // namespace

http::response<http::string_body> TooManyRequests(std::chrono::seconds retry_after,
                                                  const std::string& api, unsigned version) {
  auto answer = Problem(http::status::too_many_requests, "rate-limited", "Rate limit exceeded",
                        StrCat("the rate limit of api \"", api, "\" is exceeded; retry in ",
                               retry_after.count(), " s"),
                        version);
  answer.set(http::field::retry_after, std::to_string(retry_after.count()));
  return answer;
}

http::response<http::string_body> QuotaExceeded(std::chrono::seconds retry_after,
                                                const std::string& api, unsigned version) {
  auto answer = Problem(
      http::status::forbidden, "quota-exceeded", "Quota exceeded",
      StrCat("the quota of api \"", api, "\" is spent; it renews in ", retry_after.count(), " s"),
      version);
  answer.set(http::field::retry_after, std::to_string(retry_after.count()));
  return answer;
}

http::response<http::string_body> LimitSpent(const CallCount& call,
                                             std::chrono::seconds retry_after,
                                             const std::string& api, unsigned version) {
  return call.quota ? QuotaExceeded(retry_after, api, version)
                    : TooManyRequests(retry_after, api, version);
}

bool SubscriptionStreams::TryOpen(const std::string& subscription, uint32_t limit) {
  std::lock_guard lock(mu_);
  uint32_t& open = open_[subscription];
  if (limit > 0 && open >= limit) return false;
  ++open;
  return true;
}

void SubscriptionStreams::Close(const std::string& subscription) {
  std::lock_guard lock(mu_);
  if (auto found = open_.find(subscription); found != open_.end() && --found->second == 0) {
    open_.erase(found);
  }
}

InboundOutcome ApplyInbound(const policy::Section& inbound, http::fields& request,
                            std::string_view target, const std::string& client_ip,
                            const std::string& api, const std::string& subscription,
                            RateLimiter& limiter, std::vector<CallCount>* deferred,
                            unsigned version) {
  InboundOutcome outcome;
  // Counts a call now, or leaves it to the caller; false when the limit is spent.
  const auto count = [&](CallCount call) {
    if (deferred == nullptr) {
      if (auto retry = limiter.Acquire(call)) {
        outcome.answer = LimitSpent(call, *retry, api, version);
        return false;
      }
    }
    if (call.bytes > 0) outcome.bandwidth.push_back(call);
    if (deferred != nullptr) deferred->push_back(std::move(call));
    return true;
  };
  const auto scope = [&](size_t index) { return StrCat(api, "#", index, "#", subscription); };
  for (size_t index = 0; index < inbound.steps.size(); ++index) {
    const policy::Step& step = inbound.steps[index];
    if (const auto* set = std::get_if<policy::SetHeader>(&step)) {
      SetHeader(*set, request);
    } else if (const auto* check = std::get_if<policy::CheckHeader>(&step)) {
      // Every occurrence must pass: a repeat must not smuggle a value past the check.
      auto [first, last] = request.equal_range(check->name);
      bool ok = first != last;
      for (auto it = first; ok && it != last && !check->values.empty(); ++it) {
        ok = std::any_of(check->values.begin(), check->values.end(), [&](const std::string& v) {
          return check->ignore_case ? boost::beast::iequals(it->value(), v) : it->value() == v;
        });
      }
      if (!ok) {
        outcome.answer = Problem(static_cast<http::status>(check->failed_check_httpcode),
                                 "check-header", "Header check failed",
                                 check->failed_check_error_message.empty()
                                     ? StrCat("header ", check->name, " is missing or not allowed")
                                     : check->failed_check_error_message,
                                 version);
        return outcome;
      }
    } else if (const auto* limit = std::get_if<policy::RateLimit>(&step)) {
      if (!count({scope(index), "", limit->calls, limit->renewal_period})) return outcome;
    } else if (const auto* by_key = std::get_if<policy::RateLimitByKey>(&step)) {
      if (!count({scope(index), CounterKeyValue(by_key->key, request, target, client_ip),
                  by_key->calls, by_key->renewal_period})) {
        return outcome;
      }
    } else if (const auto* quota = std::get_if<policy::Quota>(&step)) {
      if (!count({scope(index), "", quota->calls, quota->renewal_period,
                  quota->bandwidth_kilobytes * 1024, true})) {
        return outcome;
      }
    } else if (const auto* quota_by_key = std::get_if<policy::QuotaByKey>(&step)) {
      if (!count({scope(index), CounterKeyValue(quota_by_key->key, request, target, client_ip),
                  quota_by_key->calls, quota_by_key->renewal_period,
                  quota_by_key->bandwidth_kilobytes * 1024, true})) {
        return outcome;
      }
    } else if (const auto* respond = std::get_if<policy::ReturnResponse>(&step)) {
      http::response<http::string_body> answer{static_cast<http::status>(respond->status), version};
      if (!respond->reason.empty()) answer.reason(respond->reason);
      for (const auto& [name, value] : respond->headers) answer.insert(name, value);
      answer.body() = respond->body;
      PreparePayload(answer);
      outcome.answer = std::move(answer);
      return outcome;
    } else if (const auto* lookup = std::get_if<policy::CacheLookup>(&step)) {
      outcome.cache_lookup = lookup;
    } else if (const auto* validate = std::get_if<policy::ValidateContent>(&step)) {
      outcome.validate_content = validate;
    }
  }
  return outcome;
}

void ApplyBackend(const policy::Section& backend, Route& route) {
  for (const policy::Step& step : backend.steps) {
    const auto* forward = std::get_if<policy::ForwardRequest>(&step);
    if (forward == nullptr) continue;
    if (forward->timeout) {
      route.timeout = std::max(std::chrono::seconds(1),
                               std::chrono::ceil<std::chrono::seconds>(*forward->timeout));
    }
    if (forward->buffer_response) route.buffer_response = *forward->buffer_response;
    if (forward->fail_on_error_status_code) {
      route.fail_on_error_status_code = *forward->fail_on_error_status_code;
    }
    if (forward->buffer_request_body) route.buffer_request_body = *forward->buffer_request_body;
  }
}

void ApplyOutboundHeaders(const policy::Section& outbound, http::fields& response) {
  for (const policy::Step& step : outbound.steps) {
    if (const auto* set = std::get_if<policy::SetHeader>(&step)) SetHeader(*set, response);
  }
}

const policy::CacheStore* FindCacheStore(const policy::Section& outbound) {
  for (const policy::Step& step : outbound.steps) {
    if (const auto* store = std::get_if<policy::CacheStore>(&step)) return store;
  }
  return nullptr;
}

std::string CacheKey(const std::string& api, std::string_view target, const http::fields& request,
                     const policy::CacheLookup& lookup) {
  const size_t query_start = target.find('?');
  std::string key = StrCat(api, "\n", target.substr(0, query_start), "\n");
  if (lookup.vary_by_query_parameters.empty()) {
    if (query_start != std::string_view::npos) key.append(target.substr(query_start));
  } else {
    // Each value is prefixed with its length: decoded values may hold '&' and '=', and two
    // different queries must never share a key.
    for (const std::string& name : lookup.vary_by_query_parameters) {
      const std::string value = QueryParameter(target, name);
      StrAppendTo(key, name, "=", value.size(), ":", value, "&");
    }
  }
  // Every line of a repeated header counts, each prefixed with its length.
  for (const std::string& header : lookup.vary_by_headers) {
    StrAppendTo(key, "\n", header, ":");
    const auto [first, last] = request.equal_range(header);
    for (auto field = first; field != last; ++field) {
      StrAppendTo(key, field->value().size(), ":", field->value(), ",");
    }
  }
  return key;
}

}  // namespace apim::dataplane
