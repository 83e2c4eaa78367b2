#pragma once
// The policy compiler: turns an API Management-style policy document
//   <policies><inbound>…</inbound><backend>…</backend><outbound>…</outbound><on-error>…</on-error>
//   </policies>
// into plain steps. The data plane executes them; the control plane validates documents with them.
// Only the policies below are understood. Anything else (another element, attribute or policy
// expression) is refused with an error rather than ignored, so a document that parses means here
// exactly what it means in API Management.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/rules.h"

namespace apim::policy {

// What set-header does when the header is already there.
enum class ExistsAction { kOverride, kSkip, kAppend, kDelete };

// <base/>: the parent scope's steps for this section go here (global → api → operation).
struct Base {
  friend bool operator==(const Base&, const Base&) = default;
};

// <set-header name="X" exists-action="override|skip|append|delete"><value>v</value>…</set-header>
// Each value is one header line. `values` is empty exactly when the action is kDelete.
struct SetHeader {
  std::string name;
  ExistsAction exists_action = ExistsAction::kOverride;
  std::vector<std::string> values;
  friend bool operator==(const SetHeader&, const SetHeader&) = default;
};

// A list of header lines set-header edits, seen through a small adapter that holds a reference
// to it: the data plane's real messages, the response a return-response builds. Names compare
// case-insensitively.
template <typename Headers>
concept HeaderList = requires(Headers headers, std::string_view name, std::string_view value) {
  { headers.Contains(name) } -> std::convertible_to<bool>;
  headers.RemoveAll(name);
  headers.Add(name, value);
};

// Applies a set-header to `headers`. The one definition of exists-action, so the responses the
// gateway makes up cannot drift from the messages it forwards: override and delete drop every
// line of the name first, skip does nothing when the header is there, append adds beside it.
template <HeaderList Headers>
void ApplySetHeader(const SetHeader& set, Headers headers) {
  const bool exists = headers.Contains(set.name);
  if (set.exists_action == ExistsAction::kSkip && exists) return;
  if (set.exists_action == ExistsAction::kOverride || set.exists_action == ExistsAction::kDelete) {
    headers.RemoveAll(set.name);
  }
  for (const std::string& value : set.values) headers.Add(set.name, value);
}

// <check-header name="X" failed-check-httpcode="401" failed-check-error-message="…"
//   ignore-case="true"><value>…</value></check-header>
// The request passes if the header is present and, when values are given, equals one of them.
struct CheckHeader {
  std::string name;
  unsigned failed_check_httpcode = 401;
  std::string failed_check_error_message;
  bool ignore_case = true;
  std::vector<std::string> values;
  friend bool operator==(const CheckHeader&, const CheckHeader&) = default;
};

// <rate-limit calls="N" renewal-period="SECONDS"/>: N calls per period for the whole scope.
struct RateLimit {
  uint32_t calls = 0;
  std::chrono::seconds renewal_period{0};
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

// What rate-limit-by-key and quota-by-key count by. For kHeader and kQueryParameter `value` is
// the name of the header or parameter; requests without it share one counter (the expression's
// default argument only names that shared counter, so it is not kept). For kLiteral it is the key
// itself.
struct CounterKey {
  enum class Kind { kLiteral, kClientIp, kHeader, kQueryParameter } kind = Kind::kLiteral;
  std::string value;
  friend bool operator==(const CounterKey&, const CounterKey&) = default;
};

// <rate-limit-by-key calls="N" renewal-period="S" counter-key="@(context.Request.IpAddress)"/>
struct RateLimitByKey {
  uint32_t calls = 0;
  std::chrono::seconds renewal_period{0};
  CounterKey key;
  friend bool operator==(const RateLimitByKey&, const RateLimitByKey&) = default;
};

// <quota calls="N" bandwidth="KB" renewal-period="SECONDS"/>: calls and/or kilobytes (request
// plus response bytes, 1 KB = 1024 bytes) per renewal period for the whole scope. At least one of
// `calls` and `bandwidth_kilobytes` is set; 0 means that one is not limited. APIM's per-API
// <api>/<operation> children are refused: a policy's scope is already one API or operation.
struct Quota {
  uint32_t calls = 0;
  uint64_t bandwidth_kilobytes = 0;
  std::chrono::seconds renewal_period{0};
  friend bool operator==(const Quota&, const Quota&) = default;
};

// <quota-by-key calls="N" bandwidth="KB" renewal-period="S" counter-key="@(…)"/>: a Quota per
// counter key, the keys as rate-limit-by-key's. increment-condition, increment-count and
// first-period-start are refused.
struct QuotaByKey {
  uint32_t calls = 0;
  uint64_t bandwidth_kilobytes = 0;
  std::chrono::seconds renewal_period{0};
  CounterKey key;
  friend bool operator==(const QuotaByKey&, const QuotaByKey&) = default;
};

// <return-response><set-status code="429" reason="…"/><set-header …/><set-body>…</set-body>
// </return-response>: ends the request with this response. The set-header children are already
// applied in order (their exists-action included), so `headers` is the final list.
struct ReturnResponse {
  unsigned status = 200;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  friend bool operator==(const ReturnResponse&, const ReturnResponse&) = default;
};

// <forward-request timeout="S" | timeout-ms="MS" buffer-response="…"
//   fail-on-error-status-code="…" buffer-request-body="…"/>. Unset fields keep the gateway's
// defaults (which never buffer a response).
struct ForwardRequest {
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<bool> buffer_response;
  std::optional<bool> fail_on_error_status_code;
  std::optional<bool> buffer_request_body;
  friend bool operator==(const ForwardRequest&, const ForwardRequest&) = default;
};

// <cache-lookup vary-by-developer="false" vary-by-developer-groups="false">
//   <vary-by-header>Accept</vary-by-header><vary-by-query-parameter>q</vary-by-query-parameter>
// </cache-lookup>
struct CacheLookup {
  std::vector<std::string> vary_by_headers;
  std::vector<std::string> vary_by_query_parameters;
  friend bool operator==(const CacheLookup&, const CacheLookup&) = default;
};

// <cache-store duration="SECONDS"/>
struct CacheStore {
  std::chrono::seconds duration{0};
  friend bool operator==(const CacheStore&, const CacheStore&) = default;
};

// <validate-content unspecified-content-type-action="prevent|detect|ignore" max-size="BYTES"
//   size-exceeded-action="prevent|detect|ignore"/>; max-size is at most 4 MiB, as in APIM.
struct ValidateContent {
  uint64_t max_size = 0;
  std::string unspecified_content_type_action = "prevent";
  std::string size_exceeded_action = "prevent";
  friend bool operator==(const ValidateContent&, const ValidateContent&) = default;
};

// New alternatives go at the end: the compiler's element table follows this order.
using Step =
    std::variant<Base, SetHeader, CheckHeader, RateLimit, RateLimitByKey, ReturnResponse,
                 ForwardRequest, CacheLookup, CacheStore, ValidateContent, Quota, QuotaByKey>;

// The XML element a step came from ("set-header", "base", …).
std::string_view ElementName(const Step& step);

struct Section {
  std::vector<Step> steps;
  bool has_base() const;
  friend bool operator==(const Section&, const Section&) = default;
};

// A section that is absent from the XML is an empty Section (and so does not inherit).
struct Document {
  Section inbound, backend, outbound, on_error;
  friend bool operator==(const Document&, const Document&) = default;
};

// Compiles a policy document. Errors are INVALID_ARGUMENT with a message
// "policy.xml: line N: ELEMENT: what is wrong" that names the attribute when one is at fault;
// for malformed XML, "policy.xml: line N: " and pugixml's description. Placement follows APIM:
// cache-lookup, check-header, quota, quota-by-key, rate-limit, rate-limit-by-key and
// validate-content in inbound; forward-request in backend; cache-store in outbound; set-header and
// return-response in inbound, outbound and on-error; <base/> anywhere, at most once per section.
// Rules::kServe compiles a stored document written before the newer rules (control characters in
// header values, statuses that cannot carry the response a policy makes), as the worker does.
absl::StatusOr<Document> Parse(std::string_view xml, Rules rules = Rules::kWrite);

// The effective document of a child scope (api under global, operation under api): per section,
// the child's <base/> is replaced by the parent's steps, copied as they are; a section where the
// child has no <base/> does not inherit anything (APIM semantics).
Document Merge(const Document& parent, const Document& child);

// Reasons the document would break an SSE stream, each once and starting with the element
// ("cache-lookup: responses would be replayed from cache instead of streamed"); empty if there are
// none. Pass the merged document to judge what an API will really run.
std::vector<std::string> SseViolations(const Document& document);

}  // namespace apim::policy
