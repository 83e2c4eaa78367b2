#pragma once
// How each resource maps onto its table: the key column, the data columns in bind order, the
// conversion both ways, and the fields named when a write breaks an SSE rule. Internal to the
// store: rows.h builds its SQL from these, integrity.h names the fields.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "apim/v1/resources.pb.h"
#include "common/scope.h"
#include "common/str_cat.h"
#include "controlplane/store/sqlite.h"

namespace apim::store {

template <typename Resource>
struct Table;

template <typename Optional>
std::optional<int64_t> OptionalColumn(bool has, Optional value) {
  return has ? std::optional<int64_t>(static_cast<int64_t>(value)) : std::nullopt;
}

// The API a scoped row belongs to, bound as NULL for the global scope.
inline void BindScopeApi(Statement& statement, int index, std::string_view scope) {
  std::string_view api = apim::ApiOfScope(scope);
  if (api.empty()) {
    statement.BindNull(index);
  } else {
    statement.Bind(index, api);
  }
}

template <>
struct Table<v1::Tier> {
  static constexpr std::string_view kKind = "tier";
  static constexpr std::string_view kTable = "tiers";
  static constexpr std::string_view kKey = "name";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "";
  // The field named when a write would put an SSE API on a tier without long-lived connections.
  static constexpr std::string_view kSseField = "tier.long_lived_connections";
  static constexpr std::array<std::string_view, 7> kColumns = {"description",
                                                               "long_lived_connections",
                                                               "max_response_duration_seconds",
                                                               "idle_timeout_seconds",
                                                               "heartbeat_interval_seconds",
                                                               "max_concurrent_streams",
                                                               "built_in"};
  static const std::string& Key(const v1::Tier& tier) { return tier.name(); }
  static void SetKey(v1::Tier& tier, std::string key) { tier.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Tier& tier) {
    s.Bind(i, tier.description())
        .Bind(i + 1, int64_t{tier.long_lived_connections()})
        .Bind(i + 2, int64_t{tier.max_response_duration_seconds()})
        .Bind(i + 3, int64_t{tier.idle_timeout_seconds()})
        .Bind(i + 4, int64_t{tier.heartbeat_interval_seconds()})
        .Bind(i + 5, int64_t{tier.max_concurrent_streams()})
        .Bind(i + 6, int64_t{tier.built_in()});
  }
  static void Read(Statement& s, int i, v1::Tier& tier) {
    tier.set_description(s.ColumnText(i));
    tier.set_long_lived_connections(s.ColumnInt(i + 1) != 0);
    tier.set_max_response_duration_seconds(static_cast<uint32_t>(s.ColumnInt(i + 2)));
    tier.set_idle_timeout_seconds(static_cast<uint32_t>(s.ColumnInt(i + 3)));
    tier.set_heartbeat_interval_seconds(static_cast<uint32_t>(s.ColumnInt(i + 4)));
    tier.set_max_concurrent_streams(static_cast<uint32_t>(s.ColumnInt(i + 5)));
    tier.set_built_in(s.ColumnInt(i + 6) != 0);
  }
};

template <>
struct Table<v1::Gateway> {
  static constexpr std::string_view kKind = "gateway";
  static constexpr std::string_view kTable = "gateways";
  static constexpr std::string_view kKey = "name";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "";
  static constexpr std::string_view kSseField = "gateway.tier";
  static constexpr std::array<std::string_view, 9> kColumns = {"description",
                                                               "tier",
                                                               "shared_state_redis_address",
                                                               "shared_state_tls",
                                                               "shared_state_ca_certificate",
                                                               "shared_state_username",
                                                               "shared_state_password",
                                                               "shared_state_database",
                                                               "shared_state_key_prefix"};
  static const std::string& Key(const v1::Gateway& gateway) { return gateway.name(); }
  static void SetKey(v1::Gateway& gateway, std::string key) { gateway.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Gateway& gateway) {
    const v1::SharedState& shared = gateway.shared_state();
    s.Bind(i, gateway.description())
        .Bind(i + 1, gateway.tier())
        .Bind(i + 2, shared.redis_address())
        .Bind(i + 3, int64_t{shared.tls()})
        .Bind(i + 4, shared.ca_certificate())
        .Bind(i + 5, shared.username())
        .Bind(i + 6, shared.password())
        .Bind(i + 7, int64_t{shared.database()})
        .Bind(i + 8, shared.key_prefix());
  }
  static void Read(Statement& s, int i, v1::Gateway& gateway) {
    gateway.set_description(s.ColumnText(i));
    gateway.set_tier(s.ColumnText(i + 1));
    v1::SharedState shared;
    shared.set_redis_address(s.ColumnText(i + 2));
    shared.set_tls(s.ColumnInt(i + 3) != 0);
    shared.set_ca_certificate(s.ColumnText(i + 4));
    shared.set_username(s.ColumnText(i + 5));
    shared.set_password(s.ColumnText(i + 6));
    shared.set_database(static_cast<uint32_t>(s.ColumnInt(i + 7)));
    shared.set_key_prefix(s.ColumnText(i + 8));
    // All unset is none, so a gateway without shared state reads back as it was written.
    if (shared.ByteSizeLong() > 0) *gateway.mutable_shared_state() = std::move(shared);
  }
};

template <>
struct Table<v1::Certificate> {
  static constexpr std::string_view kKind = "certificate";
  static constexpr std::string_view kTable = "certificates";
  static constexpr std::string_view kKey = "name";
  static constexpr std::string_view kSseField = "";
  static constexpr std::string_view kGuardrailField = "";
  static constexpr std::array<std::string_view, 2> kColumns = {"certificate_chain", "private_key"};
  static const std::string& Key(const v1::Certificate& c) { return c.name(); }
  static void SetKey(v1::Certificate& c, std::string key) { c.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Certificate& c) {
    s.Bind(i, c.certificate_chain()).Bind(i + 1, c.private_key());
  }
  static void Read(Statement& s, int i, v1::Certificate& c) {
    c.set_certificate_chain(s.ColumnText(i));
    c.set_private_key(s.ColumnText(i + 1));
  }
};

template <>
struct Table<v1::Api> {
  static constexpr std::string_view kKind = "api";
  static constexpr std::string_view kTable = "apis";
  static constexpr std::string_view kKey = "name";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "api.sse";
  static constexpr std::string_view kSseField = "api.sse";
  static constexpr std::array<std::string_view, 17> kColumns = {"display_name",
                                                                "description",
                                                                "path_prefix",
                                                                "host",
                                                                "backend_url",
                                                                "sse",
                                                                "timeout_seconds",
                                                                "buffer_response",
                                                                "fail_on_error_status_code",
                                                                "buffer_request_body",
                                                                "heartbeat_interval_seconds",
                                                                "subscription_required",
                                                                "backend_ca_certificate",
                                                                "backend_client_certificate",
                                                                "backend_client_key",
                                                                "backend_server_name",
                                                                "backend_skip_verification"};
  static const std::string& Key(const v1::Api& api) { return api.name(); }
  static void SetKey(v1::Api& api, std::string key) { api.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Api& api) {
    s.Bind(i, api.display_name())
        .Bind(i + 1, api.description())
        .Bind(i + 2, api.path_prefix())
        .Bind(i + 3, api.host())
        .Bind(i + 4, api.backend_url())
        .Bind(i + 5, int64_t{api.sse()})
        .Bind(i + 6, OptionalColumn(api.has_timeout_seconds(), api.timeout_seconds()))
        .Bind(i + 7, OptionalColumn(api.has_buffer_response(), api.buffer_response()))
        .Bind(i + 8,
              OptionalColumn(api.has_fail_on_error_status_code(), api.fail_on_error_status_code()))
        .Bind(i + 9, OptionalColumn(api.has_buffer_request_body(), api.buffer_request_body()))
        .Bind(i + 10, OptionalColumn(api.has_heartbeat_interval_seconds(),
                                     api.heartbeat_interval_seconds()))
        .Bind(i + 11, int64_t{api.subscription_required()})
        .Bind(i + 12, api.backend_tls().ca_certificate())
        .Bind(i + 13, api.backend_tls().client_certificate())
        .Bind(i + 14, api.backend_tls().client_key())
        .Bind(i + 15, api.backend_tls().server_name())
        .Bind(i + 16, int64_t{api.backend_tls().skip_verification()});
  }
  static void Read(Statement& s, int i, v1::Api& api) {
    api.set_display_name(s.ColumnText(i));
    api.set_description(s.ColumnText(i + 1));
    api.set_path_prefix(s.ColumnText(i + 2));
    api.set_host(s.ColumnText(i + 3));
    api.set_backend_url(s.ColumnText(i + 4));
    api.set_sse(s.ColumnInt(i + 5) != 0);
    if (auto v = s.ColumnOptionalInt(i + 6)) api.set_timeout_seconds(static_cast<uint32_t>(*v));
    if (auto v = s.ColumnOptionalInt(i + 7)) api.set_buffer_response(*v != 0);
    if (auto v = s.ColumnOptionalInt(i + 8)) api.set_fail_on_error_status_code(*v != 0);
    if (auto v = s.ColumnOptionalInt(i + 9)) api.set_buffer_request_body(*v != 0);
    if (auto v = s.ColumnOptionalInt(i + 10)) {
      api.set_heartbeat_interval_seconds(static_cast<uint32_t>(*v));
    }
    api.set_subscription_required(s.ColumnInt(i + 11) != 0);
    v1::BackendTls tls;
    tls.set_ca_certificate(s.ColumnText(i + 12));
    tls.set_client_certificate(s.ColumnText(i + 13));
    tls.set_client_key(s.ColumnText(i + 14));
    tls.set_server_name(s.ColumnText(i + 15));
    tls.set_skip_verification(s.ColumnInt(i + 16) != 0);
    // Unset stays unset, so that an API without backend TLS reads back as it was written.
    if (tls.ByteSizeLong() > 0) *api.mutable_backend_tls() = std::move(tls);
  }
};

template <>
struct Table<v1::DiagnosticSetting> {
  static constexpr std::string_view kKind = "diagnostic setting";
  static constexpr std::string_view kTable = "diagnostic_settings";
  static constexpr std::string_view kKey = "scope";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "diagnostic_setting.response_body_bytes";
  static constexpr std::string_view kSseField = "";
  static constexpr std::array<std::string_view, 7> kColumns = {
      "api",     "sampling_percentage", "verbosity",          "log_client_ip",
      "headers", "request_body_bytes",  "response_body_bytes"};
  static const std::string& Key(const v1::DiagnosticSetting& d) { return d.scope(); }
  static void SetKey(v1::DiagnosticSetting& d, std::string key) { d.set_scope(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::DiagnosticSetting& d) {
    BindScopeApi(s, i, d.scope());
    // Header names cannot contain newlines, so one text column holds the list.
    s.Bind(i + 1, OptionalColumn(d.has_sampling_percentage(), d.sampling_percentage()))
        .Bind(i + 2, int64_t{d.verbosity()})
        .Bind(i + 3, int64_t{d.log_client_ip()})
        .Bind(i + 4, StrJoin(d.headers(), "\n"))
        .Bind(i + 5, int64_t{d.request_body_bytes()})
        .Bind(i + 6, int64_t{d.response_body_bytes()});
  }
  static void Read(Statement& s, int i, v1::DiagnosticSetting& d) {
    if (auto v = s.ColumnOptionalInt(i + 1)) d.set_sampling_percentage(static_cast<uint32_t>(*v));
    d.set_verbosity(static_cast<v1::Verbosity>(s.ColumnInt(i + 2)));
    d.set_log_client_ip(s.ColumnInt(i + 3) != 0);
    std::string headers = s.ColumnText(i + 4);
    for (size_t start = 0, end; start < headers.size(); start = end + 1) {
      end = std::min(headers.find('\n', start), headers.size());
      d.add_headers(headers.substr(start, end - start));
    }
    d.set_request_body_bytes(static_cast<uint32_t>(s.ColumnInt(i + 5)));
    d.set_response_body_bytes(static_cast<uint32_t>(s.ColumnInt(i + 6)));
  }
};

template <>
struct Table<v1::CacheSetting> {
  static constexpr std::string_view kKind = "cache setting";
  static constexpr std::string_view kTable = "cache_settings";
  static constexpr std::string_view kKey = "scope";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "cache_setting.enabled";
  static constexpr std::string_view kSseField = "";
  static constexpr std::array<std::string_view, 4> kColumns = {
      "api", "enabled", "default_ttl_seconds", "max_entry_bytes"};
  static const std::string& Key(const v1::CacheSetting& c) { return c.scope(); }
  static void SetKey(v1::CacheSetting& c, std::string key) { c.set_scope(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::CacheSetting& c) {
    BindScopeApi(s, i, c.scope());
    s.Bind(i + 1, int64_t{c.enabled()})
        .Bind(i + 2, OptionalColumn(c.has_default_ttl_seconds(), c.default_ttl_seconds()))
        .Bind(i + 3, OptionalColumn(c.has_max_entry_bytes(), c.max_entry_bytes()));
  }
  static void Read(Statement& s, int i, v1::CacheSetting& c) {
    c.set_enabled(s.ColumnInt(i + 1) != 0);
    if (auto v = s.ColumnOptionalInt(i + 2)) c.set_default_ttl_seconds(static_cast<uint32_t>(*v));
    if (auto v = s.ColumnOptionalInt(i + 3)) c.set_max_entry_bytes(static_cast<uint64_t>(*v));
  }
};

template <>
struct Table<v1::Policy> {
  static constexpr std::string_view kKind = "policy";
  static constexpr std::string_view kTable = "policies";
  static constexpr std::string_view kKey = "scope";
  // The field named when a write would let an SSE API be buffered, cached or body-logged.
  static constexpr std::string_view kGuardrailField = "policy.xml";
  static constexpr std::string_view kSseField = "";
  static constexpr std::array<std::string_view, 2> kColumns = {"api", "xml"};
  static const std::string& Key(const v1::Policy& p) { return p.scope(); }
  static void SetKey(v1::Policy& p, std::string key) { p.set_scope(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Policy& p) {
    BindScopeApi(s, i, p.scope());
    s.Bind(i + 1, p.xml());
  }
  static void Read(Statement& s, int i, v1::Policy& p) { p.set_xml(s.ColumnText(i + 1)); }
};

template <>
struct Table<v1::Product> {
  static constexpr std::string_view kKind = "product";
  static constexpr std::string_view kTable = "products";
  static constexpr std::string_view kKey = "name";
  static constexpr std::string_view kSseField = "";
  static constexpr std::string_view kGuardrailField = "";
  static constexpr std::array<std::string_view, 2> kColumns = {"display_name", "description"};
  static const std::string& Key(const v1::Product& p) { return p.name(); }
  static void SetKey(v1::Product& p, std::string key) { p.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Product& p) {
    s.Bind(i, p.display_name()).Bind(i + 1, p.description());
  }
  static void Read(Statement& s, int i, v1::Product& p) {
    p.set_display_name(s.ColumnText(i));
    p.set_description(s.ColumnText(i + 1));
  }
};

// The API or product a subscription scope names ("api:X", "product:Y"), else empty.
inline std::string_view ScopeTarget(std::string_view scope, std::string_view prefix) {
  return scope.starts_with(prefix) ? scope.substr(prefix.size()) : std::string_view();
}

inline void BindOptionalText(Statement& s, int index, std::string_view text) {
  if (text.empty()) {
    s.BindNull(index);
  } else {
    s.Bind(index, text);
  }
}

template <>
struct Table<v1::Subscription> {
  static constexpr std::string_view kKind = "subscription";
  static constexpr std::string_view kTable = "subscriptions";
  static constexpr std::string_view kKey = "name";
  static constexpr std::string_view kSseField = "";
  static constexpr std::string_view kGuardrailField = "";
  static constexpr std::array<std::string_view, 8> kColumns = {"display_name",
                                                               "scope",
                                                               "api",
                                                               "product",
                                                               "suspended",
                                                               "max_concurrent_streams",
                                                               "primary_key_sha256",
                                                               "secondary_key_sha256"};
  static const std::string& Key(const v1::Subscription& x) { return x.name(); }
  static void SetKey(v1::Subscription& x, std::string key) { x.set_name(std::move(key)); }
  static void Bind(Statement& s, int i, const v1::Subscription& x) {
    s.Bind(i, x.display_name()).Bind(i + 1, x.scope());
    BindOptionalText(s, i + 2, ScopeTarget(x.scope(), "api:"));
    BindOptionalText(s, i + 3, ScopeTarget(x.scope(), "product:"));
    s.Bind(i + 4, int64_t{x.suspended()})
        .Bind(i + 5, int64_t{x.max_concurrent_streams()})
        .Bind(i + 6, x.primary_key_sha256())
        .Bind(i + 7, x.secondary_key_sha256());
  }
  static void Read(Statement& s, int i, v1::Subscription& x) {
    x.set_display_name(s.ColumnText(i));
    x.set_scope(s.ColumnText(i + 1));
    x.set_suspended(s.ColumnInt(i + 4) != 0);
    x.set_max_concurrent_streams(static_cast<uint32_t>(s.ColumnInt(i + 5)));
    x.set_primary_key_sha256(s.ColumnText(i + 6));
    x.set_secondary_key_sha256(s.ColumnText(i + 7));
  }
};

}  // namespace apim::store
