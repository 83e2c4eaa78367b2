#include "common/validation.h"

#include <arpa/inet.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <ctime>
#include <set>
#include <string>
#include <string_view>

#include "common/policy.h"
#include "common/return_if_error.h"
#include "common/scope.h"
#include "common/str_cat.h"
#include "common/tls/pem.h"

namespace apim {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxDescriptionLength = 1000;
constexpr uint32_t kMaxSeconds = 7 * 24 * 3600;
constexpr uint32_t kMaxBodyLogBytes = 8192;
// Shared state: Redis's own `databases` setting (16 by default) is the real bound on the
// database; this one only catches numbers no server is configured for.
constexpr uint32_t kMaxRedisDatabase = 65535;
constexpr size_t kMaxRedisKeyPrefixBytes = 128;
constexpr size_t kMaxRedisUsernameBytes = 256;
constexpr size_t kMaxRedisPasswordBytes = 4096;
constexpr size_t kMaxRedisCaCertificateBytes = 64 * 1024;

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(StrCat(field, ": ", problem));
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool IsDnsLabel(std::string_view label) {
  return !label.empty() && label.size() <= kMaxNameLength && IsLowerAlnum(label.front()) &&
         IsLowerAlnum(label.back()) && std::all_of(label.begin(), label.end(), [](char c) {
           return IsLowerAlnum(c) || c == '-';
         });
}

// Names are DNS labels, so they can appear in hosts, paths and Kubernetes objects unchanged.
absl::Status ValidateName(std::string_view field, std::string_view name) {
  if (name.empty()) return Invalid(field, "is required");
  if (!IsDnsLabel(name)) {
    return Invalid(field, StrCat("\"", name,
                                 "\" must be 1-63 lowercase letters, digits or '-', starting and "
                                 "ending with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLength(std::string_view field, std::string_view text, size_t max) {
  if (text.size() > max) return Invalid(field, StrCat("must be at most ", max, " characters"));
  return absl::OkStatus();
}

// Whether UTF-8 text holds a control character: C0 (but tab and line breaks where `multi_line`),
// DEL, or C1 (U+0080-U+009F, which some terminals read as escape sequences).
bool HasControlCharacter(std::string_view text, bool multi_line) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 && !(multi_line && (byte == '\t' || byte == '\n' || byte == '\r'))) {
      return true;
    }
    if (byte == 0x7f) return true;
    if (byte == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      return true;
    }
  }
  return false;
}

// Text people read in a terminal (apimctl's tables, logs): bounded, and, for new writes, without
// control characters, so a stored name cannot carry a terminal escape sequence.
absl::Status ValidateDisplayText(std::string_view field, std::string_view text, size_t max,
                                 bool multi_line, Rules rules) {
  if (absl::Status s = ValidateLength(field, text, max); !s.ok()) return s;
  if (rules == Rules::kWrite && HasControlCharacter(text, multi_line)) {
    return Invalid(field, multi_line ? "must not contain control characters other than tab and "
                                       "line breaks"
                                     : "must not contain control characters");
  }
  return absl::OkStatus();
}

absl::Status ValidateDisplayName(std::string_view field, std::string_view text, Rules rules) {
  return ValidateDisplayText(field, text, 200, false, rules);
}

absl::Status ValidateDescription(std::string_view field, std::string_view text, Rules rules) {
  return ValidateDisplayText(field, text, kMaxDescriptionLength, true, rules);
}

absl::Status ValidateRange(std::string_view field, uint64_t value, uint64_t min, uint64_t max) {
  if (value < min || value > max) {
    return Invalid(field, StrCat("must be between ", min, " and ", max, " (got ", value, ")"));
  }
  return absl::OkStatus();
}

// RFC 3986 pchar without percent-encoding, which a prefix does not need.
bool IsPathChar(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') ||
         std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

absl::Status ValidatePathPrefix(std::string_view prefix) {
  constexpr std::string_view field = "api.path_prefix";
  if (prefix.empty()) return Invalid(field, "is required, e.g. \"/orders\"");
  if (prefix.front() != '/') return Invalid(field, StrCat("\"", prefix, "\" must start with '/'"));
  if (prefix.size() > 1 && prefix.back() == '/') {
    return Invalid(field, StrCat("\"", prefix, "\" must not end with '/'"));
  }
  if (!std::all_of(prefix.begin(), prefix.end(), IsPathChar)) {
    return Invalid(field, StrCat("\"", prefix,
                                 "\" may only contain letters, digits, '/' and -._~!$&'()*+,;=:@"));
  }
  if (prefix.find("//") != std::string_view::npos) {
    return Invalid(field, StrCat("\"", prefix, "\" must not contain empty segments"));
  }
  for (std::string_view dots : {"/./", "/../"}) {
    std::string padded = StrCat(prefix, "/");
    if (padded.find(dots) != std::string::npos) {
      return Invalid(field, StrCat("\"", prefix, "\" must not contain '.' or '..' segments"));
    }
  }
  return ValidateLength(field, prefix, 1024);
}

absl::Status ValidateHost(std::string_view host, std::string_view field = "api.host") {
  if (host.empty()) return absl::OkStatus();
  bool ok = host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
              return IsLowerAlnum(c) || c == '-' || c == '.';
            });
  if (!ok) {
    return Invalid(field, StrCat("\"", host,
                                 "\" must be a lowercase host name such as "
                                 "\"api.example.com\" (no port, no scheme)"));
  }
  return absl::OkStatus();
}

// A hostname a gateway serves over TLS, matched against the client's SNI: a lowercase DNS name,
// or a wildcard of one leading label, as certificates name them.
absl::Status ValidateHostname(std::string_view field, std::string_view hostname) {
  if (hostname.empty()) return Invalid(field, "is required, e.g. \"api.example.com\"");
  std::string_view rest = hostname.starts_with("*.") ? hostname.substr(2) : hostname;
  bool ok = hostname.size() <= 253;
  while (ok) {
    const size_t dot = rest.find('.');
    ok = IsDnsLabel(rest.substr(0, dot));  // an empty label too: "a..b", "a.", ""
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (!ok) {
    return Invalid(field, StrCat("\"", hostname,
                                 "\" must be a lowercase DNS name such as \"api.example.com\", or "
                                 "\"*.example.com\" (no port, no trailing dot)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHostnameBindings(
    const google::protobuf::RepeatedPtrField<v1::HostnameBinding>& bindings) {
  std::set<std::string_view> seen;
  const v1::HostnameBinding* default_binding = nullptr;
  for (int i = 0; i < bindings.size(); ++i) {
    const v1::HostnameBinding& binding = bindings.Get(i);
    const std::string field = StrCat("gateway.hostnames[", i, "]");
    APIM_RETURN_IF_ERROR(ValidateHostname(StrCat(field, ".hostname"), binding.hostname()));
    if (!seen.insert(binding.hostname()).second) {
      return Invalid(StrCat(field, ".hostname"),
                     StrCat("\"", binding.hostname(), "\" is listed twice"));
    }
    APIM_RETURN_IF_ERROR(ValidateName(StrCat(field, ".certificate"), binding.certificate()));
    if (binding.is_default() && default_binding != nullptr) {
      return Invalid(StrCat(field, ".is_default"),
                     StrCat("only one hostname may be the default, and \"",
                            default_binding->hostname(), "\" already is"));
    }
    if (binding.is_default()) default_binding = &binding;
  }
  return absl::OkStatus();
}

std::string Rfc3339(int64_t unix_seconds) {
  return google::protobuf::util::TimeUtil::ToString(
      google::protobuf::util::TimeUtil::SecondsToTimestamp(unix_seconds));
}

absl::Status ValidateBackendUrl(std::string_view url) {
  constexpr std::string_view field = "api.backend_url";
  if (url.empty()) return Invalid(field, "is required, e.g. \"http://orders.internal:8080/v1\"");
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return Invalid(field,
                   StrCat("\"", url, "\" is not an absolute URL: ", parsed.error().message()));
  }
  if (parsed->scheme() != "http" && parsed->scheme() != "https") {
    return Invalid(field, StrCat("\"", url, "\" must use http or https"));
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty()) {
    return Invalid(field, StrCat("\"", url, "\" must name a host"));
  }
  if (parsed->has_userinfo()) {
    return Invalid(field, StrCat("\"", url, "\" must not carry credentials; use a policy"));
  }
  // port_number() is 16 bits and wraps, so range-check the digits themselves.
  if (parsed->has_port() && (parsed->port().empty() || parsed->port().size() > 5 ||
                             std::stoul(std::string(parsed->port())) - 1 > 65534)) {
    return Invalid(field, StrCat("\"", url, "\" has an invalid port"));
  }
  if (parsed->has_query() || parsed->has_fragment()) {
    return Invalid(field, StrCat("\"", url, "\" must not have a query or fragment"));
  }
  return absl::OkStatus();
}

absl::Status ValidateScope(std::string_view field, std::string_view scope, bool allow_operation) {
  if (scope == kGlobalScope) return absl::OkStatus();
  if (scope.starts_with(kApiScopePrefix)) {
    return ValidateName(field, scope.substr(kApiScopePrefix.size()));
  }
  if (allow_operation && scope.starts_with(kOperationScopePrefix)) {
    std::string_view rest = scope.substr(kOperationScopePrefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      return Invalid(field, StrCat("\"", scope, "\" must be operation:API/OPERATION"));
    }
    if (absl::Status api = ValidateName(field, rest.substr(0, slash)); !api.ok()) return api;
    return ValidateName(field, rest.substr(slash + 1));
  }
  return Invalid(field, StrCat("\"", scope, "\" must be \"global\" or \"api:NAME\"",
                               allow_operation ? " or \"operation:API/OPERATION\"" : ""));
}

bool IsHeaderNameChar(char c) {
  return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

absl::Status ValidateBackendTls(std::string_view backend_url, const v1::BackendTls& tls) {
  constexpr std::string_view field = "api.backend_tls";
  std::string scheme(backend_url.substr(0, 8));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "https://") {
    return Invalid(field, "applies to https:// backend URLs only");
  }
  if (!tls.ca_certificate().empty()) {
    APIM_RETURN_IF_ERROR(
        tls::CheckCertificates(StrCat(field, ".ca_certificate"), tls.ca_certificate()));
  }
  if (tls.client_certificate().empty() != tls.client_key().empty()) {
    return Invalid(StrCat(field, tls.client_key().empty() ? ".client_key" : ".client_certificate"),
                   "is required with the other (a client certificate goes with its key)");
  }
  if (!tls.client_certificate().empty()) {
    APIM_RETURN_IF_ERROR(
        tls::CheckCertificates(StrCat(field, ".client_certificate"), tls.client_certificate()));
    APIM_RETURN_IF_ERROR(tls::CheckPrivateKey(StrCat(field, ".client_key"), tls.client_key()));
    if (absl::Status matches =
            tls::CheckKeyMatchesCertificate(tls.client_certificate(), tls.client_key());
        !matches.ok()) {
      return Invalid(StrCat(field, ".client_key"), std::string(matches.message()));
    }
  }
  if (!tls.server_name().empty())
    return ValidateHost(tls.server_name(), "api.backend_tls.server_name");
  return absl::OkStatus();
}

// HOST:PORT of a server the workers dial: a DNS name, an IPv4 address or an IPv6 address in
// brackets, and a port from 1 to 65535.
absl::Status ValidateHostAndPort(std::string_view field, std::string_view address) {
  constexpr std::string_view kExamples =
      "\"redis.internal:6379\", \"10.0.0.5:6379\" or \"[fd00::5]:6379\"";
  if (address.empty()) return Invalid(field, StrCat("is required, e.g. ", kExamples));
  auto refuse = [&](std::string_view why) {
    return Invalid(field,
                   StrCat("\"", address, "\" ", why, "; expected HOST:PORT such as ", kExamples));
  };
  if (address.find("://") != std::string_view::npos) return refuse("must not name a scheme");
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return refuse("has no port");
  const std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  uint32_t port_number = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || port_number < 1 ||
      port_number > 65535) {
    return refuse("has an invalid port (1-65535)");
  }
  if (host.starts_with('[')) {
    in6_addr ipv6{};
    if (host.size() < 3 || !host.ends_with(']') ||
        ::inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), &ipv6) != 1) {
      return refuse("has an invalid IPv6 address");
    }
    return absl::OkStatus();
  }
  if (host.find(':') != std::string_view::npos) {
    return refuse("has an IPv6 address without brackets (write [ADDRESS]:PORT)");
  }
  if (host.empty()) return refuse("has no host");
  if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
    in_addr ipv4{};
    if (::inet_pton(AF_INET, std::string(host).c_str(), &ipv4) != 1) {
      return refuse("has an invalid IPv4 address");
    }
    return absl::OkStatus();
  }
  // A DNS name, in any case; '_' too, which some internal zones use.
  bool name = host.size() <= 253;
  for (std::string_view rest = host; name;) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    name = !label.empty() && label.size() <= kMaxNameLength && label.front() != '-' &&
           label.back() != '-' && std::all_of(label.begin(), label.end(), [](char c) {
             return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
           });
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (!name) return refuse("has an invalid host name");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSharedState(const v1::SharedState& shared_state, std::string_view field) {
  v1::SharedState given = shared_state;
  given.clear_has_password();                              // Output only.
  if (given.ByteSizeLong() == 0) return absl::OkStatus();  // None: each worker counts alone.
  APIM_RETURN_IF_ERROR(
      ValidateHostAndPort(StrCat(field, ".redis_address"), shared_state.redis_address()));
  if (!shared_state.ca_certificate().empty()) {
    const std::string ca_field = StrCat(field, ".ca_certificate");
    if (!shared_state.tls()) {
      return Invalid(ca_field, StrCat("applies only with TLS: set ", field, ".tls too"));
    }
    APIM_RETURN_IF_ERROR(
        ValidateLength(ca_field, shared_state.ca_certificate(), kMaxRedisCaCertificateBytes));
    APIM_RETURN_IF_ERROR(tls::CheckCertificates(ca_field, shared_state.ca_certificate()));
  }
  const std::string& username = shared_state.username();
  APIM_RETURN_IF_ERROR(
      ValidateLength(StrCat(field, ".username"), username, kMaxRedisUsernameBytes));
  if (username.find(' ') != std::string::npos || HasControlCharacter(username, false)) {
    return Invalid(StrCat(field, ".username"), "must not contain spaces or control characters");
  }
  const std::string& password = shared_state.password();
  const std::string password_field = StrCat(field, ".password");
  APIM_RETURN_IF_ERROR(ValidateLength(password_field, password, kMaxRedisPasswordBytes));
  if (password.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return Invalid(password_field, "must not contain line breaks or NUL bytes");
  }
  if (!username.empty() && password.empty()) {
    return Invalid(password_field, StrCat("is required with ", field,
                                          ".username (Redis authenticates a user by password)"));
  }
  APIM_RETURN_IF_ERROR(
      ValidateRange(StrCat(field, ".database"), shared_state.database(), 0, kMaxRedisDatabase));
  const std::string& prefix = shared_state.key_prefix();
  APIM_RETURN_IF_ERROR(
      ValidateLength(StrCat(field, ".key_prefix"), prefix, kMaxRedisKeyPrefixBytes));
  if (!std::all_of(prefix.begin(), prefix.end(), [](char c) { return c > ' ' && c < 0x7f; })) {
    return Invalid(StrCat(field, ".key_prefix"),
                   "must be printable ASCII without spaces, e.g. \"apim:edge:\"");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::Tier& tier, Rules rules) {
  if (absl::Status s = ValidateName("tier.name", tier.name()); !s.ok()) return s;
  if (absl::Status s = ValidateDescription("tier.description", tier.description(), rules);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ValidateRange("tier.idle_timeout_seconds", tier.idle_timeout_seconds(), 1, kMaxSeconds);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateRange("tier.max_response_duration_seconds",
                                     tier.max_response_duration_seconds(), 0, kMaxSeconds);
      !s.ok()) {
    return s;
  }
  if (tier.heartbeat_interval_seconds() >= tier.idle_timeout_seconds()) {
    return Invalid("tier.heartbeat_interval_seconds",
                   StrCat("must be shorter than idle_timeout_seconds (",
                          tier.idle_timeout_seconds(), ") or quiet streams would be cut"));
  }
  if (!tier.long_lived_connections() && tier.max_response_duration_seconds() == 0) {
    return Invalid("tier.max_response_duration_seconds",
                   "must be set (non-zero) on a tier without long-lived connections");
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::Gateway& gateway, Rules rules) {
  if (absl::Status s = ValidateName("gateway.name", gateway.name()); !s.ok()) return s;
  if (absl::Status s = ValidateDescription("gateway.description", gateway.description(), rules);
      !s.ok()) {
    return s;
  }
  APIM_RETURN_IF_ERROR(ValidateName("gateway.tier", gateway.tier()));
  APIM_RETURN_IF_ERROR(ValidateHostnameBindings(gateway.hostnames()));
  return ValidateSharedState(gateway.shared_state(), "gateway.shared_state");
}

absl::Status Validate(const v1::Api& api, Rules rules) {
  if (absl::Status s = ValidateName("api.name", api.name()); !s.ok()) return s;
  if (absl::Status s = ValidateDisplayName("api.display_name", api.display_name(), rules);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateDescription("api.description", api.description(), rules); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidatePathPrefix(api.path_prefix()); !s.ok()) return s;
  if (absl::Status s = ValidateHost(api.host()); !s.ok()) return s;
  if (absl::Status s = ValidateBackendUrl(api.backend_url()); !s.ok()) return s;
  std::set<std::string_view> seen;
  for (int i = 0; i < api.gateways_size(); ++i) {
    std::string field = StrCat("api.gateways[", i, "]");
    if (absl::Status s = ValidateName(field, api.gateways(i)); !s.ok()) return s;
    if (!seen.insert(api.gateways(i)).second) {
      return Invalid(field, StrCat("\"", api.gateways(i), "\" is listed twice"));
    }
  }
  if (api.has_timeout_seconds()) {
    if (absl::Status s = ValidateRange("api.timeout_seconds", api.timeout_seconds(), 1, 3600);
        !s.ok()) {
      return s;
    }
  }
  if (api.has_heartbeat_interval_seconds()) {
    if (absl::Status s = ValidateRange("api.heartbeat_interval_seconds",
                                       api.heartbeat_interval_seconds(), 0, 3600);
        !s.ok()) {
      return s;
    }
  }
  if (api.has_backend_tls()) return ValidateBackendTls(api.backend_url(), api.backend_tls());
  return absl::OkStatus();
}

absl::Status Validate(const v1::DiagnosticSetting& setting, Rules) {
  if (absl::Status s = ValidateScope("diagnostic_setting.scope", setting.scope(), false); !s.ok()) {
    return s;
  }
  if (setting.has_sampling_percentage()) {
    if (absl::Status s = ValidateRange("diagnostic_setting.sampling_percentage",
                                       setting.sampling_percentage(), 0, 100);
        !s.ok()) {
      return s;
    }
  }
  if (!v1::Verbosity_IsValid(setting.verbosity())) {
    return Invalid("diagnostic_setting.verbosity", "is not a known verbosity");
  }
  for (int i = 0; i < setting.headers_size(); ++i) {
    const std::string& header = setting.headers(i);
    if (header.empty() || !std::all_of(header.begin(), header.end(), IsHeaderNameChar)) {
      return Invalid(StrCat("diagnostic_setting.headers[", i, "]"),
                     StrCat("\"", header, "\" is not a valid header name"));
    }
  }
  if (absl::Status s = ValidateRange("diagnostic_setting.request_body_bytes",
                                     setting.request_body_bytes(), 0, kMaxBodyLogBytes);
      !s.ok()) {
    return s;
  }
  return ValidateRange("diagnostic_setting.response_body_bytes", setting.response_body_bytes(), 0,
                       kMaxBodyLogBytes);
}

absl::Status Validate(const v1::CacheSetting& setting, Rules) {
  if (absl::Status s = ValidateScope("cache_setting.scope", setting.scope(), false); !s.ok()) {
    return s;
  }
  if (setting.has_default_ttl_seconds()) {
    if (absl::Status s = ValidateRange("cache_setting.default_ttl_seconds",
                                       setting.default_ttl_seconds(), 1, 365 * 24 * 3600);
        !s.ok()) {
      return s;
    }
  }
  if (setting.has_max_entry_bytes()) {
    return ValidateRange("cache_setting.max_entry_bytes", setting.max_entry_bytes(), 1,
                         64ull << 20);
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::Policy& policy, Rules rules) {
  if (absl::Status s = ValidateScope("policy.scope", policy.scope(), true); !s.ok()) return s;
  if (policy.xml().empty()) return Invalid("policy.xml", "is required");
  if (absl::Status s = ValidateLength("policy.xml", policy.xml(), 256 * 1024); !s.ok()) return s;
  // The full compile: unknown elements, misplaced ones and bad attributes are refused here,
  // with the line, not discovered by a worker.
  absl::StatusOr<policy::Document> document = policy::Parse(policy.xml(), rules);
  if (!document.ok()) return document.status();
  return absl::OkStatus();
}

absl::Status Validate(const v1::Product& product, Rules rules) {
  if (absl::Status s = ValidateName("product.name", product.name()); !s.ok()) return s;
  if (absl::Status s = ValidateDisplayName("product.display_name", product.display_name(), rules);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateDescription("product.description", product.description(), rules);
      !s.ok()) {
    return s;
  }
  std::set<std::string_view> seen;
  for (int i = 0; i < product.apis_size(); ++i) {
    std::string field = StrCat("product.apis[", i, "]");
    if (absl::Status s = ValidateName(field, product.apis(i)); !s.ok()) return s;
    if (!seen.insert(product.apis(i)).second) {
      return Invalid(field, StrCat("\"", product.apis(i), "\" is listed twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::Subscription& subscription, Rules rules) {
  if (absl::Status s = ValidateName("subscription.name", subscription.name()); !s.ok()) return s;
  if (absl::Status s =
          ValidateDisplayName("subscription.display_name", subscription.display_name(), rules);
      !s.ok()) {
    return s;
  }
  const std::string& scope = subscription.scope();
  if (scope == "all") return absl::OkStatus();
  for (std::string_view prefix : {"api:", "product:"}) {
    if (scope.starts_with(prefix)) {
      return ValidateName("subscription.scope", std::string_view(scope).substr(prefix.size()));
    }
  }
  return Invalid("subscription.scope",
                 StrCat("\"", scope, "\" must be \"all\", \"api:NAME\" or \"product:NAME\""));
}

absl::Status Validate(const v1::Certificate& certificate, Rules) {
  constexpr std::string_view kChain = "certificate.certificate_chain";
  constexpr std::string_view kKey = "certificate.private_key";
  APIM_RETURN_IF_ERROR(ValidateName("certificate.name", certificate.name()));
  const std::string& chain = certificate.certificate_chain();
  const std::string& key = certificate.private_key();
  if (chain.empty()) {
    return Invalid(kChain, "is required (PEM: the certificate first, then its intermediates)");
  }
  if (key.empty()) return Invalid(kKey, "is required (PEM, unencrypted)");
  APIM_RETURN_IF_ERROR(ValidateLength(kChain, chain, 64 * 1024));
  APIM_RETURN_IF_ERROR(ValidateLength(kKey, key, 16 * 1024));
  APIM_RETURN_IF_ERROR(tls::CheckCertificates(kChain, chain));
  APIM_RETURN_IF_ERROR(tls::CheckPrivateKey(kKey, key));
  if (absl::Status matches = tls::CheckKeyMatchesCertificate(chain, key); !matches.ok()) {
    return Invalid(kKey,
                   StrCat(std::string(matches.message()), " (the first in certificate_chain)"));
  }
  absl::StatusOr<tls::LeafCertificate> leaf = tls::ReadLeafCertificate(kChain, chain);
  if (!leaf.ok()) return leaf.status();
  // Clients refuse such a certificate, so serving it would only move the failure to them.
  const int64_t now = std::time(nullptr);
  if (leaf->not_after < now) {
    return Invalid(kChain, StrCat("the certificate expired at ", Rfc3339(leaf->not_after)));
  }
  if (leaf->not_before > now) {
    return Invalid(kChain,
                   StrCat("the certificate is not valid until ", Rfc3339(leaf->not_before)));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::Snapshot& snapshot) {
  if (!snapshot.has_tier()) return Invalid("snapshot.tier", "is required");
  if (absl::Status s = Validate(snapshot.tier(), Rules::kServe); !s.ok()) return s;
  for (const v1::DiagnosticSetting& setting : snapshot.diagnostics()) {
    if (absl::Status s = Validate(setting, Rules::kServe); !s.ok()) return s;
  }
  for (const v1::CacheSetting& setting : snapshot.caches()) {
    if (absl::Status s = Validate(setting, Rules::kServe); !s.ok()) return s;
  }
  std::set<std::string_view> names;
  std::set<std::pair<std::string_view, std::string_view>> routes;
  for (const v1::Api& api : snapshot.apis()) {
    if (absl::Status s = Validate(api, Rules::kServe); !s.ok()) return s;
    if (!names.insert(api.name()).second) {
      return Invalid("api.name", StrCat("\"", api.name(), "\" appears twice"));
    }
    if (!routes.emplace(api.host(), api.path_prefix()).second) {
      return Invalid("api.path_prefix", StrCat("\"", api.path_prefix(), "\" of api \"", api.name(),
                                               "\" is served by another api too"));
    }
    if (api.sse() && !snapshot.tier().long_lived_connections()) {
      return absl::FailedPreconditionError(
          StrCat("api.sse: api \"", api.name(), "\" streams server-sent events, but tier \"",
                 snapshot.tier().name(), "\" does not allow long-lived connections"));
    }
  }
  // A standalone file is held to the gateway's rules (a pushed snapshot met them when written).
  return ValidateSharedState(snapshot.shared_state(), "snapshot.shared_state");
}

}  // namespace apim
