// libFuzzer target for the policy compiler (common/policy.h): any bytes given as a policy
// document must compile or be refused with a located INVALID_ARGUMENT, never crash, leak or hang;
// and what compiles must keep the promises common/policy.h makes, because the data plane relies
// on them without checking again: header names are tokens and values cannot split a header line,
// numbers are in range, elements sit only in their sections, and Merge and SseViolations behave
// as documented. A broken promise prints what and aborts (a crash, for libFuzzer).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "common/policy.h"

namespace {

namespace policy = apim::policy;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "policy_compiler_fuzz: %s\n", what.c_str());
  std::abort();
}

void Require(bool condition, const std::string& what) {
  if (!condition) Fail(what);
}

// RFC 9110 token, the grammar of a header name.
bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// Could not end a header line early or smuggle another one in.
bool IsSafeInAHeaderLine(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Where common/policy.h says each element may appear (inbound, backend, outbound, on-error).
bool AllowedIn(std::string_view element, int section) {
  enum { kInbound, kBackend, kOutbound, kOnError };
  if (element == "base") return true;
  if (element == "set-header" || element == "return-response") return section != kBackend;
  if (element == "forward-request") return section == kBackend;
  if (element == "cache-store") return section == kOutbound;
  if (element == "cache-lookup" || element == "check-header" || element == "rate-limit" ||
      element == "rate-limit-by-key" || element == "validate-content" || element == "quota" ||
      element == "quota-by-key") {
    return section == kInbound;
  }
  return false;
}

// A quota limits something, renews within a year, and its bytes fit a signed 64-bit counter.
void CheckQuota(uint32_t calls, uint64_t kilobytes, std::chrono::seconds period,
                const std::string& element) {
  Require(calls > 0 || kilobytes > 0, element + " limits neither calls nor bandwidth");
  Require(kilobytes <= (uint64_t{1} << 40), element + " bandwidth out of range");
  Require(period.count() >= 1 && period.count() <= 365 * 24 * 3600,
          element + " renewal-period out of range");
}

void CheckStep(const policy::Step& step, int section) {
  const std::string element(policy::ElementName(step));
  Require(AllowedIn(element, section),
          element + " compiled into section " + std::to_string(section));
  if (const auto* set = std::get_if<policy::SetHeader>(&step)) {
    Require(IsToken(set->name), "set-header name is not a token: " + set->name);
    Require(set->values.empty() == (set->exists_action == policy::ExistsAction::kDelete),
            "set-header values are empty exactly when the action is delete");
    for (const std::string& value : set->values) {
      Require(IsSafeInAHeaderLine(value), "set-header value can split a header line");
    }
  } else if (const auto* check = std::get_if<policy::CheckHeader>(&step)) {
    Require(IsToken(check->name), "check-header name is not a token: " + check->name);
    Require(check->failed_check_httpcode >= 100 && check->failed_check_httpcode <= 599,
            "check-header failed-check-httpcode out of range");
  } else if (const auto* limit = std::get_if<policy::RateLimit>(&step)) {
    Require(limit->renewal_period.count() >= 1 && limit->renewal_period.count() <= 300,
            "rate-limit renewal-period out of range");
  } else if (const auto* keyed = std::get_if<policy::RateLimitByKey>(&step)) {
    Require(keyed->renewal_period.count() >= 1 && keyed->renewal_period.count() <= 300,
            "rate-limit-by-key renewal-period out of range");
    if (keyed->key.kind == policy::CounterKey::Kind::kHeader) {
      Require(IsToken(keyed->key.value), "rate-limit-by-key counts by a header that is no token");
    }
  } else if (const auto* quota = std::get_if<policy::Quota>(&step)) {
    CheckQuota(quota->calls, quota->bandwidth_kilobytes, quota->renewal_period, "quota");
  } else if (const auto* keyed_quota = std::get_if<policy::QuotaByKey>(&step)) {
    CheckQuota(keyed_quota->calls, keyed_quota->bandwidth_kilobytes, keyed_quota->renewal_period,
               "quota-by-key");
    if (keyed_quota->key.kind == policy::CounterKey::Kind::kHeader) {
      Require(IsToken(keyed_quota->key.value), "quota-by-key counts by a header that is no token");
    }
  } else if (const auto* answer = std::get_if<policy::ReturnResponse>(&step)) {
    Require(answer->status >= 100 && answer->status <= 599, "return-response status out of range");
    Require(IsSafeInAHeaderLine(answer->reason), "return-response reason can split the line");
    for (const auto& [name, value] : answer->headers) {
      Require(IsToken(name), "return-response header name is not a token: " + name);
      Require(IsSafeInAHeaderLine(value), "return-response header value can split a line");
    }
  } else if (const auto* forward = std::get_if<policy::ForwardRequest>(&step)) {
    if (forward->timeout) {
      Require(forward->timeout->count() > 0 && forward->timeout->count() <= 3600 * 1000,
              "forward-request timeout out of range");
    }
  } else if (const auto* lookup = std::get_if<policy::CacheLookup>(&step)) {
    for (const std::string& header : lookup->vary_by_headers) {
      Require(IsToken(header), "cache-lookup varies by a header that is no token: " + header);
    }
    for (const std::string& parameter : lookup->vary_by_query_parameters) {
      Require(!parameter.empty(), "cache-lookup varies by an empty query parameter");
    }
  } else if (const auto* store = std::get_if<policy::CacheStore>(&step)) {
    Require(store->duration.count() >= 1, "cache-store duration below 1 s");
  } else if (const auto* validate = std::get_if<policy::ValidateContent>(&step)) {
    Require(validate->max_size <= 4 * 1024 * 1024, "validate-content max-size over 4 MiB");
    for (const std::string* action :
         {&validate->unspecified_content_type_action, &validate->size_exceeded_action}) {
      Require(*action == "prevent" || *action == "detect" || *action == "ignore",
              "validate-content action " + *action);
    }
  }
}

const policy::Section& SectionAt(const policy::Document& document, int index) {
  const policy::Section* sections[] = {&document.inbound, &document.backend, &document.outbound,
                                       &document.on_error};
  return *sections[index];
}

void CheckDocument(const policy::Document& document) {
  for (int section = 0; section < 4; ++section) {
    int bases = 0;
    for (const policy::Step& step : SectionAt(document, section).steps) {
      CheckStep(step, section);
      bases += std::holds_alternative<policy::Base>(step) ? 1 : 0;
    }
    Require(bases <= 1, "<base/> more than once in a section");
    Require(SectionAt(document, section).has_base() == (bases == 1), "has_base() is wrong");
  }
}

// Merge: the child's <base/> is replaced by the parent's steps as they are; a section without
// <base/> stays the child's own.
void CheckMerge(const policy::Document& parent, const policy::Document& child) {
  const policy::Document merged = policy::Merge(parent, child);
  for (int section = 0; section < 4; ++section) {
    const auto& own = SectionAt(child, section).steps;
    const auto& above = SectionAt(parent, section).steps;
    const auto& out = SectionAt(merged, section).steps;
    const auto base = std::find_if(own.begin(), own.end(), [](const policy::Step& step) {
      return std::holds_alternative<policy::Base>(step);
    });
    if (base == own.end()) {
      Require(out == own, "Merge changed a section that has no <base/>");
      continue;
    }
    const size_t before = static_cast<size_t>(base - own.begin());
    Require(out.size() == own.size() - 1 + above.size(), "Merge produced the wrong step count");
    Require(std::equal(own.begin(), base, out.begin()), "Merge changed the steps before <base/>");
    Require(std::equal(above.begin(), above.end(), out.begin() + static_cast<ptrdiff_t>(before)),
            "Merge did not put the parent's steps where <base/> was");
    Require(std::equal(base + 1, own.end(),
                       out.begin() + static_cast<ptrdiff_t>(before) +
                           static_cast<ptrdiff_t>(above.size())),
            "Merge changed the steps after <base/>");
  }
  // Merging only adds the parent's steps: nothing the child breaks SSE with goes away.
  const auto child_reasons = policy::SseViolations(child);
  const auto merged_reasons = policy::SseViolations(merged);
  for (const std::string& reason : child_reasons) {
    Require(std::find(merged_reasons.begin(), merged_reasons.end(), reason) != merged_reasons.end(),
            "Merge lost an SSE violation: " + reason);
  }
}

bool BreaksStreams(const policy::Step& step) {
  if (std::holds_alternative<policy::CacheLookup>(step) ||
      std::holds_alternative<policy::CacheStore>(step) ||
      std::holds_alternative<policy::ValidateContent>(step)) {
    return true;
  }
  const auto* forward = std::get_if<policy::ForwardRequest>(&step);
  return forward != nullptr && forward->buffer_response.value_or(false);
}

void CheckSseViolations(const policy::Document& document) {
  const auto reasons = policy::SseViolations(document);
  bool any = false;
  for (int section = 0; section < 4; ++section) {
    for (const policy::Step& step : SectionAt(document, section).steps) {
      if (!BreaksStreams(step)) continue;
      any = true;
      const std::string element(policy::ElementName(step));
      Require(std::any_of(reasons.begin(), reasons.end(),
                          [&](const std::string& r) { return r.starts_with(element); }),
              "no SSE violation reported for " + element);
    }
  }
  Require(any == !reasons.empty(), "SseViolations reports a reason without a cause");
  for (size_t i = 0; i < reasons.size(); ++i) {
    for (size_t j = i + 1; j < reasons.size(); ++j) {
      Require(reasons[i] != reasons[j], "SseViolations repeats: " + reasons[i]);
    }
  }
}

// A parent with a step of every kind its sections allow, and <base/> in each.
const policy::Document& Parent() {
  static const policy::Document parent = [] {
    auto parsed = policy::Parse(R"(<policies>
  <inbound><base/><set-header name="X-Global"><value>1</value></set-header>
    <rate-limit calls="5" renewal-period="60"/><cache-lookup/></inbound>
  <backend><forward-request timeout="30" buffer-response="true"/><base/></backend>
  <outbound><cache-store duration="60"/><base/></outbound>
  <on-error><return-response><set-status code="503"/></return-response></on-error>
</policies>)");
    if (!parsed.ok()) Fail("the fuzzer's own parent document does not compile");
    return *parsed;
  }();
  return parent;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<policy::Document> parsed = policy::Parse(xml);
  const absl::StatusOr<policy::Document> again = policy::Parse(xml);
  Require(parsed.ok() == again.ok(), "Parse is not deterministic");
  if (!parsed.ok()) {
    Require(parsed.status().code() == absl::StatusCode::kInvalidArgument,
            "a refused document is not INVALID_ARGUMENT");
    const std::string message(parsed.status().message());
    Require(message == std::string(again.status().message()), "Parse is not deterministic");
    // "policy.xml: line N: …", N a line of the document (XML ends lines with LF, CRLF or CR).
    constexpr std::string_view kPrefix = "policy.xml: line ";
    Require(message.starts_with(kPrefix), "error does not locate itself: " + message);
    size_t lines = 1;
    for (size_t i = 0; i < xml.size(); ++i) {
      lines += xml[i] == '\n' || (xml[i] == '\r' && (i + 1 == xml.size() || xml[i + 1] != '\n'));
    }
    const size_t line = std::strtoull(message.c_str() + kPrefix.size(), nullptr, 10);
    Require(line >= 1 && line <= lines, "error names line " + std::to_string(line) + " of " +
                                            std::to_string(lines) + ": " + message);
    return 0;
  }
  Require(*parsed == *again, "Parse is not deterministic");
  const policy::Document& document = *parsed;
  CheckDocument(document);
  CheckSseViolations(document);
  CheckMerge(Parent(), document);
  CheckMerge(document, document);
  CheckMerge(policy::Document{}, document);
  CheckMerge(document, Parent());
  CheckSseViolations(policy::Merge(Parent(), document));
  return 0;
}
