#include "common/policy/elements.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/policy/counter_key.h"
#include "common/return_if_error.h"
#include "common/str_cat.h"

namespace apim::policy::internal {
namespace {

constexpr uint64_t kMaxRenewalPeriodSeconds = 300;              // as APIM
constexpr uint64_t kMaxValidateContentBytes = 4 * 1024 * 1024;  // as APIM
constexpr uint64_t kMaxCacheDurationSeconds = 365 * 24 * 3600;
constexpr uint64_t kMaxTimeoutSeconds = 3600;
constexpr uint64_t kMaxQuotaPeriodSeconds = 365 * 24 * 3600;
// 1 PiB a period: more than any quota means, and in bytes (2^50) far inside a signed 64-bit
// counter such as Redis keeps.
constexpr uint64_t kMaxQuotaKilobytes = uint64_t{1} << 40;

// A header value that could split the header block (response splitting) is refused, and, since
// it became a rule, any other control character but tab (RFC 9110 field-content): a VT or DEL
// reaches clients and backends that may read it differently.
bool IsSafeHeaderValue(std::string_view text, Rules rules) {
  if (rules == Rules::kServe) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
  }
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && byte != '\t') || byte == 0x7f;
  });
}
constexpr std::string_view kUnsafeHeaderValue =
    "must not contain line breaks, NUL or other control characters (tab is allowed)";

// Statuses a response the gateway makes up can carry: a final status, and no body where HTTP
// allows none. Rules::kServe leaves this out; the worker answers such a policy with a 500.
std::optional<std::string> StatusProblem(uint64_t code, bool with_body) {
  if (code < 200) return StrCat(code, " is not a final status; use 200-599");
  if (with_body && (code == 204 || code == 304)) {
    return StrCat(code, " responses carry no body, and this one has one");
  }
  return std::nullopt;
}

absl::Status ReadRenewalPeriod(const Source& source, pugi::xml_node node, uint64_t max_seconds,
                               std::chrono::seconds& out) {
  uint64_t seconds = 0;
  APIM_RETURN_IF_ERROR(
      ReadRequiredNumber(source, node, "renewal-period", 1, max_seconds, "seconds", seconds));
  out = std::chrono::seconds(seconds);
  return absl::OkStatus();
}

absl::Status ReadCalls(const Source& source, pugi::xml_node node, uint32_t& out) {
  uint64_t calls = 0;
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "calls", 1,
                                          std::numeric_limits<uint32_t>::max(), "", calls));
  out = static_cast<uint32_t>(calls);
  return absl::OkStatus();
}

// What quota and quota-by-key limit: calls and/or kilobytes, per renewal period.
template <typename QuotaStep>
absl::Status ReadQuotaLimits(const Source& source, pugi::xml_node node, QuotaStep& out) {
  if (!node.attribute("calls") && !node.attribute("bandwidth")) {
    return source.Error(node, "needs calls, bandwidth or both");
  }
  if (node.attribute("calls")) {
    APIM_RETURN_IF_ERROR(ReadCalls(source, node, out.calls));
  }
  std::optional<uint64_t> kilobytes;
  APIM_RETURN_IF_ERROR(
      ReadNumber(source, node, "bandwidth", 1, kMaxQuotaKilobytes, "kilobytes", kilobytes));
  out.bandwidth_kilobytes = kilobytes.value_or(0);
  // In APIM 0 means a quota that never renews; say that, not only the range.
  if (pugi::xml_attribute period = node.attribute("renewal-period");
      std::string_view(period.value()) == "0") {
    return source.Error(node, period,
                        StrCat("(a quota that never renews) is not supported; give 1 to ",
                               kMaxQuotaPeriodSeconds, " seconds"));
  }
  return ReadRenewalPeriod(source, node, kMaxQuotaPeriodSeconds, out.renewal_period);
}

// The header lines of a response return-response builds, as set-header edits them.
struct HeaderPairs {
  std::vector<std::pair<std::string, std::string>>& lines;

  static auto Named(std::string_view name) {
    return [name](const std::pair<std::string, std::string>& line) {
      return std::equal(
          line.first.begin(), line.first.end(), name.begin(), name.end(),
          [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
    };
  }
  bool Contains(std::string_view name) const {
    return std::any_of(lines.begin(), lines.end(), Named(name));
  }
  void RemoveAll(std::string_view name) { std::erase_if(lines, Named(name)); }
  void Add(std::string_view name, std::string_view value) { lines.emplace_back(name, value); }
};

}  // namespace

absl::Status Read(const Source& source, pugi::xml_node node, Base&) {
  return CheckShape(source, node, {}, {});
}

absl::Status Read(const Source& source, pugi::xml_node node, SetHeader& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"name", "exists-action"}, {"value"}));
  APIM_RETURN_IF_ERROR(ReadHeaderName(source, node, out.name));
  std::string action = "override";
  APIM_RETURN_IF_ERROR(
      ReadChoice(source, node, "exists-action", {"override", "skip", "append", "delete"}, action));
  out.exists_action = action == "skip"     ? ExistsAction::kSkip
                      : action == "append" ? ExistsAction::kAppend
                      : action == "delete" ? ExistsAction::kDelete
                                           : ExistsAction::kOverride;
  for (pugi::xml_node value : node.children("value")) {
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, value, text));
    if (!IsSafeHeaderValue(text, source.rules())) {
      return source.Error(value, StrCat("a header value ", kUnsafeHeaderValue));
    }
    out.values.emplace_back(Trim(text));
  }
  if (out.exists_action == ExistsAction::kDelete && !out.values.empty()) {
    return source.Error(node, "exists-action=\"delete\" takes no <value>");
  }
  if (out.exists_action != ExistsAction::kDelete && out.values.empty()) {
    return source.Error(node,
                        StrCat("needs at least one <value> with exists-action=\"", action, "\""));
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, CheckHeader& out) {
  APIM_RETURN_IF_ERROR(CheckShape(
      source, node, {"name", "failed-check-httpcode", "failed-check-error-message", "ignore-case"},
      {"value"}));
  APIM_RETURN_IF_ERROR(ReadHeaderName(source, node, out.name));
  std::optional<uint64_t> code;
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, "failed-check-httpcode", 100, 599, "", code));
  if (code) out.failed_check_httpcode = static_cast<unsigned>(*code);
  // The failed check's answer carries a problem body.
  if (std::optional<std::string> problem = StatusProblem(out.failed_check_httpcode, true);
      problem && source.rules() == Rules::kWrite) {
    return source.Error(node, node.attribute("failed-check-httpcode"), *problem);
  }
  out.failed_check_error_message = node.attribute("failed-check-error-message").value();
  std::optional<bool> ignore_case;
  APIM_RETURN_IF_ERROR(ReadBool(source, node, "ignore-case", ignore_case));
  out.ignore_case = ignore_case.value_or(true);
  for (pugi::xml_node value : node.children("value")) {
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, value, text));
    out.values.emplace_back(Trim(text));
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, RateLimit& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"calls", "renewal-period"}, {}));
  APIM_RETURN_IF_ERROR(ReadCalls(source, node, out.calls));
  return ReadRenewalPeriod(source, node, kMaxRenewalPeriodSeconds, out.renewal_period);
}

absl::Status Read(const Source& source, pugi::xml_node node, RateLimitByKey& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"calls", "renewal-period", "counter-key"}, {}));
  APIM_RETURN_IF_ERROR(ReadCalls(source, node, out.calls));
  APIM_RETURN_IF_ERROR(
      ReadRenewalPeriod(source, node, kMaxRenewalPeriodSeconds, out.renewal_period));
  return ReadCounterKey(source, node, out.key);
}

absl::Status Read(const Source& source, pugi::xml_node node, ReturnResponse& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {}, {"set-status", "set-header", "set-body"}));
  bool has_status = false, has_body = false;
  for (pugi::xml_node child : node.children()) {
    std::string_view name = child.name();
    if (name == "set-status") {
      if (std::exchange(has_status, true)) return source.Error(child, "appears twice");
      APIM_RETURN_IF_ERROR(CheckShape(source, child, {"code", "reason"}, {}));
      uint64_t code = 0;
      APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, child, "code", 100, 599, "", code));
      out.status = static_cast<unsigned>(code);
      out.reason = child.attribute("reason").value();
      if (!IsSafeHeaderValue(out.reason, source.rules())) {
        return source.Error(child, StrCat("reason ", kUnsafeHeaderValue));
      }
    } else if (name == "set-header") {
      SetHeader set;
      APIM_RETURN_IF_ERROR(Read(source, child, set));
      ApplySetHeader(set, HeaderPairs{out.headers});
    } else if (name == "set-body") {
      if (std::exchange(has_body, true)) return source.Error(child, "appears twice");
      APIM_RETURN_IF_ERROR(ReadText(source, child, out.body));
    }
  }
  if (std::optional<std::string> problem = StatusProblem(out.status, has_body);
      problem && source.rules() == Rules::kWrite) {
    pugi::xml_node status = node.child("set-status");
    return source.Error(status, status.attribute("code"), *problem);
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, ForwardRequest& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node,
                                  {"timeout", "timeout-ms", "buffer-response",
                                   "fail-on-error-status-code", "buffer-request-body"},
                                  {}));
  if (node.attribute("timeout") && node.attribute("timeout-ms")) {
    return source.Error(node, "timeout and timeout-ms are exclusive; give one");
  }
  std::optional<uint64_t> seconds, milliseconds;
  APIM_RETURN_IF_ERROR(
      ReadNumber(source, node, "timeout", 1, kMaxTimeoutSeconds, "seconds", seconds));
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, "timeout-ms", 1, kMaxTimeoutSeconds * 1000,
                                  "milliseconds", milliseconds));
  if (seconds) out.timeout = std::chrono::seconds(*seconds);
  if (milliseconds) out.timeout = std::chrono::milliseconds(*milliseconds);
  APIM_RETURN_IF_ERROR(ReadBool(source, node, "buffer-response", out.buffer_response));
  APIM_RETURN_IF_ERROR(
      ReadBool(source, node, "fail-on-error-status-code", out.fail_on_error_status_code));
  return ReadBool(source, node, "buffer-request-body", out.buffer_request_body);
}

absl::Status Read(const Source& source, pugi::xml_node node, CacheLookup& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"vary-by-developer", "vary-by-developer-groups"},
                                  {"vary-by-header", "vary-by-query-parameter"}));
  // There are no developer accounts to vary by; "true" would promise a separation we lack.
  for (const char* name : {"vary-by-developer", "vary-by-developer-groups"}) {
    std::optional<bool> vary;
    APIM_RETURN_IF_ERROR(ReadBool(source, node, name, vary));
    if (vary.value_or(false)) {
      return source.Error(node, node.attribute(name), "is not supported; use \"false\"");
    }
  }
  for (pugi::xml_node child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, child, text));
    std::string_view name = Trim(text);
    if (std::string_view(child.name()) == "vary-by-header") {
      if (!IsToken(name)) {
        return source.Error(child, StrCat("\"", name, "\" is not a valid header name"));
      }
      out.vary_by_headers.emplace_back(name);
    } else {
      if (name.empty()) return source.Error(child, "needs a query parameter name");
      out.vary_by_query_parameters.emplace_back(name);
    }
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, CacheStore& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"duration"}, {}));
  uint64_t seconds = 0;
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "duration", 1, kMaxCacheDurationSeconds,
                                          "seconds", seconds));
  out.duration = std::chrono::seconds(seconds);
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, ValidateContent& out) {
  APIM_RETURN_IF_ERROR(CheckShape(
      source, node, {"unspecified-content-type-action", "max-size", "size-exceeded-action"}, {}));
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "max-size", 0, kMaxValidateContentBytes,
                                          "bytes", out.max_size));
  for (auto [name, field] :
       {std::pair{"unspecified-content-type-action", &out.unspecified_content_type_action},
        std::pair{"size-exceeded-action", &out.size_exceeded_action}}) {
    APIM_RETURN_IF_ERROR(ReadChoice(source, node, name, {"prevent", "detect", "ignore"}, *field));
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, Quota& out) {
  // APIM's children set limits per API or operation inside a product's quota; here a policy's
  // scope is one API or operation already.
  for (pugi::xml_node child : node.children()) {
    const std::string_view name = child.name();
    if (child.type() == pugi::node_element && (name == "api" || name == "operation")) {
      return source.Error(child,
                          "per-API/operation quotas inside <quota> are not supported; put the "
                          "policy at the API's (or the operation's) scope");
    }
  }
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"calls", "bandwidth", "renewal-period"}, {}));
  return ReadQuotaLimits(source, node, out);
}

absl::Status Read(const Source& source, pugi::xml_node node, QuotaByKey& out) {
  // APIM attributes that would change what counts or when periods start: said plainly, rather
  // than as unknown attributes.
  for (auto [name, why] : {
           std::pair{"increment-condition", "every call the gateway admits counts"},
           std::pair{"increment-count", "every call counts once"},
           std::pair{"first-period-start", "the gateway decides when periods start"},
       }) {
    if (pugi::xml_attribute attribute = node.attribute(name)) {
      return source.Error(node, attribute, StrCat("is not supported; ", why));
    }
  }
  APIM_RETURN_IF_ERROR(
      CheckShape(source, node, {"calls", "bandwidth", "renewal-period", "counter-key"}, {}));
  APIM_RETURN_IF_ERROR(ReadQuotaLimits(source, node, out));
  return ReadCounterKey(source, node, out.key);
}

}  // namespace apim::policy::internal
