#include "dataplane/config/route_table.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <optional>
#include <variant>

#include "common/str_cat.h"
#include "common/validation.h"

namespace apim::dataplane {
namespace {

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view HostWithoutPort(std::string_view host) {
  if (host.starts_with('[')) return host.substr(0, host.find(']') + 1);  // IPv6 literal
  return host.substr(0, host.find(':'));
}

// "/orders" matches "/orders" and "/orders/1" but not "/ordersx": prefixes match whole segments.
bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

absl::StatusOr<Backend> ParseBackend(const std::string& url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return absl::InvalidArgumentError(StrCat("api.backend_url: \"", url, "\""));
  Backend backend;
  backend.tls = parsed->scheme() == "https";
  backend.host = std::string(parsed->encoded_host());
  if (backend.host.starts_with('[')) backend.host = backend.host.substr(1, backend.host.size() - 2);
  backend.port = parsed->has_port() ? std::string(parsed->port()) : (backend.tls ? "443" : "80");
  backend.authority = std::string(parsed->encoded_authority());
  backend.base_path = std::string(parsed->encoded_path());
  while (backend.base_path.ends_with('/')) backend.base_path.pop_back();
  return backend;
}

// The setting of `api`'s scope if there is one, else the global one, else null.
template <typename Setting>
const Setting* EffectiveSetting(const google::protobuf::RepeatedPtrField<Setting>& settings,
                                const std::string& api) {
  const Setting* global = nullptr;
  for (const Setting& setting : settings) {
    if (setting.scope() == StrCat("api:", api)) return &setting;
    if (setting.scope() == "global") global = &setting;
  }
  return global;
}

DiagnosticConfig Diagnostics(const v1::Snapshot& snapshot, const v1::Api& api) {
  DiagnosticConfig config;
  const v1::DiagnosticSetting* setting = EffectiveSetting(snapshot.diagnostics(), api.name());
  if (setting == nullptr) return config;
  config.configured = true;
  config.sampling_percentage =
      setting->has_sampling_percentage() ? setting->sampling_percentage() : 100;
  if (setting->verbosity() != v1::VERBOSITY_UNSPECIFIED) config.verbosity = setting->verbosity();
  config.log_client_ip = setting->log_client_ip();
  config.headers.assign(setting->headers().begin(), setting->headers().end());
  // Body logging never applies to SSE APIs: it would hold events.
  config.request_body_bytes = api.sse() ? 0 : setting->request_body_bytes();
  config.response_body_bytes = api.sse() ? 0 : setting->response_body_bytes();
  return config;
}

CacheConfig Cache(const v1::Snapshot& snapshot, const v1::Api& api) {
  CacheConfig config;
  const v1::CacheSetting* setting = EffectiveSetting(snapshot.caches(), api.name());
  if (setting == nullptr || api.sse()) return config;
  config.enabled = setting->enabled();
  if (setting->has_default_ttl_seconds()) {
    config.default_ttl = std::chrono::seconds(setting->default_ttl_seconds());
  }
  if (setting->has_max_entry_bytes()) config.max_entry_bytes = setting->max_entry_bytes();
  return config;
}

// The API's effective policy: its own document merged over the global one.
absl::StatusOr<policy::Document> EffectivePolicy(const v1::Snapshot& snapshot, const v1::Api& api) {
  policy::Document global;
  std::optional<policy::Document> own;
  for (const v1::Policy& document : snapshot.policies()) {
    const bool is_global = document.scope() == "global";
    if (!is_global && document.scope() != StrCat("api:", api.name())) continue;
    absl::StatusOr<policy::Document> parsed = policy::Parse(document.xml(), Rules::kServe);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(StrCat("policy at scope \"", document.scope(),
                                               "\": ", std::string(parsed.status().message())));
    }
    (is_global ? global : own.emplace()) = *std::move(parsed);
  }
  policy::Document effective = own ? policy::Merge(global, *own) : global;
  if (api.sse()) {
    // Defence in depth: whatever the scopes say, nothing buffers or caches an event stream.
    for (policy::Section* section :
         {&effective.inbound, &effective.backend, &effective.outbound, &effective.on_error}) {
      std::erase_if(section->steps, [](const policy::Step& step) {
        return std::holds_alternative<policy::CacheLookup>(step) ||
               std::holds_alternative<policy::CacheStore>(step) ||
               std::holds_alternative<policy::ValidateContent>(step);
      });
      for (policy::Step& step : section->steps) {
        if (auto* forward = std::get_if<policy::ForwardRequest>(&step)) {
          forward->buffer_response = false;
        }
      }
    }
  }
  return effective;
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Build(const v1::Snapshot& snapshot) {
  if (absl::Status valid = Validate(snapshot); !valid.ok()) return valid;
  RouteTable table;
  const v1::Tier& tier = snapshot.tier();
  table.tier_.name = tier.name();
  table.tier_.long_lived_connections = tier.long_lived_connections();
  table.tier_.max_response_duration = std::chrono::seconds(tier.max_response_duration_seconds());
  table.tier_.idle_timeout = std::chrono::seconds(tier.idle_timeout_seconds());
  table.tier_.max_concurrent_streams = tier.max_concurrent_streams();
  for (const v1::Api& api : snapshot.apis()) {
    absl::StatusOr<Backend> backend = ParseBackend(api.backend_url());
    if (!backend.ok()) return backend.status();
    if (backend->tls) {
      const v1::BackendTls& tls = api.backend_tls();
      BackendTlsSettings settings{.ca_pem = tls.ca_certificate(),
                                  .client_cert_pem = tls.client_certificate(),
                                  .client_key_pem = tls.client_key(),
                                  .server_name = tls.server_name(),
                                  .skip_verification = tls.skip_verification()};
      absl::StatusOr<std::shared_ptr<BackendTlsContext>> context = BackendTlsContext::For(settings);
      if (!context.ok()) {
        return absl::InvalidArgumentError(
            StrCat("api.backend_tls: api \"", api.name(), "\": ", context.status().message()));
      }
      backend->tls_context = *std::move(context);
    }
    Route route;
    route.api = api.name();
    route.host = api.host();
    route.path_prefix = api.path_prefix();
    route.backend = *std::move(backend);
    route.sse = api.sse();
    if (api.has_timeout_seconds()) route.timeout = std::chrono::seconds(api.timeout_seconds());
    route.buffer_response = api.has_buffer_response() ? api.buffer_response() : !api.sse();
    route.fail_on_error_status_code = api.fail_on_error_status_code();
    route.buffer_request_body = api.buffer_request_body();
    absl::StatusOr<policy::Document> effective = EffectivePolicy(snapshot, api);
    if (!effective.ok()) return effective.status();
    route.policy = std::make_shared<const policy::Document>(*std::move(effective));
    route.diagnostics = Diagnostics(snapshot, api);
    route.subscription_required = api.subscription_required();
    route.cache = Cache(snapshot, api);
    route.heartbeat_interval = std::chrono::seconds(api.has_heartbeat_interval_seconds()
                                                        ? api.heartbeat_interval_seconds()
                                                        : tier.heartbeat_interval_seconds());
    table.routes_.push_back(std::move(route));
  }
  for (const v1::SubscriptionGrant& grant : snapshot.subscriptions()) {
    SubscriptionGrant compiled;
    compiled.name = grant.name();
    compiled.apis.insert(grant.apis().begin(), grant.apis().end());
    compiled.max_concurrent_streams = grant.max_concurrent_streams();
    for (const std::string& key : grant.key_sha256()) {
      table.subscription_by_key_[key] = table.subscriptions_.size();
    }
    table.subscriptions_.push_back(std::move(compiled));
  }
  std::stable_sort(table.routes_.begin(), table.routes_.end(), [](const Route& a, const Route& b) {
    if (a.path_prefix.size() != b.path_prefix.size()) {
      return a.path_prefix.size() > b.path_prefix.size();
    }
    return !a.host.empty() && b.host.empty();
  });
  return table;
}

const SubscriptionGrant* RouteTable::FindSubscription(const std::string& key_sha256) const {
  auto found = subscription_by_key_.find(key_sha256);
  return found == subscription_by_key_.end() ? nullptr : &subscriptions_[found->second];
}

const Route* RouteTable::Match(std::string_view host, std::string_view target) const {
  const std::string_view path = PathOf(target);
  const std::string_view bare_host = HostWithoutPort(host);
  for (const Route& route : routes_) {
    if (!route.host.empty() && !boost::beast::iequals(route.host, bare_host)) continue;
    if (PrefixMatches(route.path_prefix, path)) return &route;
  }
  return nullptr;
}

std::string RouteTable::BackendTarget(const Route& route, std::string_view target) {
  const size_t query = target.find('?');
  std::string_view path = target.substr(0, query);
  std::string_view rest = route.path_prefix == "/" ? path : path.substr(route.path_prefix.size());
  std::string joined = StrCat(route.backend.base_path, rest);
  if (joined.empty() || joined.front() != '/') joined.insert(joined.begin(), '/');
  if (query != std::string_view::npos) joined.append(target.substr(query));
  return joined;
}

}  // namespace apim::dataplane
