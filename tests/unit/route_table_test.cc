// The route table: which API a request reaches (host, then the longest whole-segment prefix),
// where its backend is, and the settings each route gets from the snapshot and its defaults.
#include "dataplane/config/route_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "common/sha256.h"
#include "tests/support/snapshots.h"

namespace apim::dataplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;
using namespace ::apim::testing;  // The snapshot builders.

RouteTable MustBuild(const v1::Snapshot& snapshot) {
  absl::StatusOr<RouteTable> table = RouteTable::Build(snapshot);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? *std::move(table) : RouteTable{};
}

// A table of APIs, each given as {name, host (empty: any), path prefix}.
struct ApiAt {
  std::string name, host, path_prefix;
};
RouteTable TableOf(std::initializer_list<ApiAt> apis) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  for (const ApiAt& api : apis) AddApi(snapshot, api.name, api.path_prefix).set_host(api.host);
  return MustBuild(snapshot);
}

// Expects each {host, target} to be routed to its API ("(none)": to no API).
struct Routed {
  std::string_view host, target, api;
};
void ExpectRoutes(const RouteTable& table, std::initializer_list<Routed> cases) {
  for (const Routed& expected : cases) {
    const Route* route = table.Match(expected.host, expected.target);
    EXPECT_EQ(route ? route->api : "(none)", expected.api)
        << "host \"" << expected.host << "\", target " << expected.target;
  }
}

// The route of the only API of `snapshot`, which serves "/api".
Route OnlyRoute(const v1::Snapshot& snapshot) {
  RouteTable table = MustBuild(snapshot);
  EXPECT_EQ(table.size(), 1u);
  const Route* route = table.Match("gw.example.com", "/api");
  EXPECT_NE(route, nullptr) << "the only API must serve /api";
  return route ? *route : Route{};
}

// An ordinary API at "/api" with `configure` applied to it, alone in a snapshot.
template <typename Configure>
Route RouteOfApi(Configure configure) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  configure(AddApi(snapshot, "api", "/api"), snapshot);
  return OnlyRoute(snapshot);
}

// --- Matching ---

TEST(RouteTableTest, RoutesToTheLongestMatchingPrefix) {
  RouteTable table =
      TableOf({{"orders", "", "/orders"}, {"orders-v2", "", "/orders/v2"}, {"root", "", "/"}});
  EXPECT_EQ(table.size(), 3u);
  ExpectRoutes(table, {{"gw", "/orders/v2/items", "orders-v2"},
                       {"gw", "/orders/v2", "orders-v2"},
                       {"gw", "/orders/v1/items", "orders"},
                       {"gw", "/orders", "orders"},
                       {"gw", "/elsewhere", "root"}});
}

TEST(RouteTableTest, MatchesPrefixesByWholeSegmentsOfThePathAlone) {
  ExpectRoutes(TableOf({{"orders", "", "/orders"}}), {{"gw", "/ordersx", "(none)"},
                                                      {"gw", "/orders-archive/1", "(none)"},
                                                      {"gw", "/order", "(none)"},
                                                      {"gw", "/orders/", "orders"},
                                                      {"gw", "/orders/1", "orders"},
                                                      {"gw", "/orders?page=2", "orders"},
                                                      {"gw", "/ordersx?x=/orders", "(none)"},
                                                      {"gw", "/other?next=/orders/1", "(none)"}});
}

TEST(RouteTableTest, MatchesTheHostWhateverItsPortAndCase) {
  ExpectRoutes(TableOf({{"orders", "api.example.com", "/orders"}}),
               {{"api.example.com", "/orders", "orders"},
                {"api.example.com:8443", "/orders", "orders"},
                {"API.Example.COM", "/orders", "orders"},
                {"other.example.com", "/orders", "(none)"},
                {"api.example.com.evil", "/orders", "(none)"},
                {"", "/orders", "(none)"}});
}

TEST(RouteTableTest, PrefersTheHostsOwnApiOverOneForAnyHostAtTheSamePrefix) {
  // The any-host API comes first in the snapshot: the order must not decide.
  ExpectRoutes(TableOf({{"shared", "", "/orders"}, {"tenant", "tenant.example.com", "/orders"}}),
               {{"tenant.example.com", "/orders/1", "tenant"},
                {"tenant.example.com:443", "/orders/1", "tenant"},
                {"other.example.com", "/orders/1", "shared"},
                {"[::1]:8080", "/orders/1", "shared"}});
}

TEST(RouteTableTest, ALongerPrefixForAnyHostWinsOverAShorterOneForTheHost) {
  ExpectRoutes(
      TableOf({{"tenant", "tenant.example.com", "/orders"}, {"archive", "", "/orders/archive"}}),
      {{"tenant.example.com", "/orders/archive/1", "archive"},
       {"tenant.example.com", "/orders/1", "tenant"}});
}

// --- Backends ---

TEST(RouteTableTest, ReadsTheBackendsHostPortAndBasePathFromItsUrl) {
  Route route = RouteOfApi(
      [](v1::Api& api, v1::Snapshot&) { api.set_backend_url("http://orders.internal:8080/v1/"); });
  EXPECT_EQ(route.backend.host, "orders.internal");
  EXPECT_EQ(route.backend.port, "8080");
  EXPECT_EQ(route.backend.authority, "orders.internal:8080");
  EXPECT_EQ(route.backend.base_path, "/v1") << "no trailing '/'";
  EXPECT_FALSE(route.backend.tls);

  route = RouteOfApi(
      [](v1::Api& api, v1::Snapshot&) { api.set_backend_url("http://orders.internal"); });
  EXPECT_EQ(route.backend.port, "80");
  EXPECT_EQ(route.backend.authority, "orders.internal");
  EXPECT_EQ(route.backend.base_path, "");

  route =
      RouteOfApi([](v1::Api& api, v1::Snapshot&) { api.set_backend_url("http://[::1]:9000/x"); });
  EXPECT_EQ(route.backend.host, "::1") << "connect to the address, without brackets";
  EXPECT_EQ(route.backend.authority, "[::1]:9000") << "the Host header keeps them";
}

TEST(RouteTableTest, HttpsBackendsShareATlsContextPerSettingsAndRefuseOnesItCannotUse) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders", "https://orders.internal");
  AddApi(snapshot, "billing", "/billing", "https://billing.internal:8443");
  AddApi(snapshot, "plain", "/plain", "http://plain.internal");
  RouteTable table = MustBuild(snapshot);
  const Backend& orders = table.Match("", "/orders")->backend;
  const Backend& billing = table.Match("", "/billing")->backend;
  EXPECT_TRUE(orders.tls);
  EXPECT_EQ(orders.port, "443");
  EXPECT_EQ(billing.port, "8443");
  ASSERT_NE(orders.tls_context, nullptr);
  EXPECT_EQ(orders.tls_context, billing.tls_context);  // Same settings: one context, one cache.
  EXPECT_EQ(table.Match("", "/plain")->backend.tls_context, nullptr);

  snapshot.mutable_apis(0)->mutable_backend_tls()->set_ca_certificate("not a certificate");
  absl::StatusOr<RouteTable> refused = RouteTable::Build(snapshot);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("api.backend_tls.ca_certificate"));
}

TEST(RouteTableTest, JoinsTheBasePathToTheRestOfThePathAndKeepsTheQuery) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders", "http://backend/v1");
  AddApi(snapshot, "root", "/", "http://backend/base");
  AddApi(snapshot, "bare", "/bare", "http://backend");
  RouteTable table = MustBuild(snapshot);
  auto backend_target = [&](std::string_view target) {
    const Route* route = table.Match("gw", target);
    return route ? RouteTable::BackendTarget(*route, target) : "(no route)";
  };
  EXPECT_EQ(backend_target("/orders/1"), "/v1/1");
  EXPECT_EQ(backend_target("/orders/1?a=b&c=%2F"), "/v1/1?a=b&c=%2F");
  EXPECT_EQ(backend_target("/orders"), "/v1");
  EXPECT_EQ(backend_target("/orders?q=1"), "/v1?q=1");
  EXPECT_EQ(backend_target("/orders/"), "/v1/");
  EXPECT_EQ(backend_target("/x/y"), "/base/x/y");
  EXPECT_EQ(backend_target("/"), "/base/");
  EXPECT_EQ(backend_target("/bare"), "/") << "an empty path becomes '/'";
  EXPECT_EQ(backend_target("/bare?q=1"), "/?q=1");
  EXPECT_EQ(backend_target("/bare/1"), "/1");
}

// --- Settings and their defaults ---

TEST(RouteTableTest, GivesForwardRequestSettingsTheirDefaults) {
  Route route = RouteOfApi([](v1::Api&, v1::Snapshot&) {});
  EXPECT_EQ(route.timeout, 300s);
  EXPECT_TRUE(route.buffer_response);
  EXPECT_FALSE(route.fail_on_error_status_code);
  EXPECT_FALSE(route.buffer_request_body);
  EXPECT_FALSE(route.sse);
  EXPECT_FALSE(route.subscription_required);
}

TEST(RouteTableTest, DoesNotBufferTheResponsesOfSseApisByDefault) {
  Route route = RouteOfApi([](v1::Api& api, v1::Snapshot&) { api.set_sse(true); });
  EXPECT_TRUE(route.sse);
  EXPECT_FALSE(route.buffer_response);
}

TEST(RouteTableTest, KeepsTheApisOwnForwardRequestSettings) {
  Route route = RouteOfApi([](v1::Api& api, v1::Snapshot&) {
    api.set_timeout_seconds(5);
    api.set_buffer_response(false);
    api.set_fail_on_error_status_code(true);
    api.set_buffer_request_body(true);
    api.set_subscription_required(true);
  });
  EXPECT_EQ(route.timeout, 5s);
  EXPECT_FALSE(route.buffer_response);
  EXPECT_TRUE(route.fail_on_error_status_code);
  EXPECT_TRUE(route.buffer_request_body);
  EXPECT_TRUE(route.subscription_required);
}

TEST(RouteTableTest, TakesTheHeartbeatFromTheTierUnlessTheApiSetsOne) {
  EXPECT_EQ(RouteOfApi([](v1::Api&, v1::Snapshot&) {}).heartbeat_interval, 15s);
  EXPECT_EQ(RouteOfApi([](v1::Api& api, v1::Snapshot&) {
              api.set_heartbeat_interval_seconds(5);
            }).heartbeat_interval,
            5s);
  EXPECT_EQ(RouteOfApi([](v1::Api& api, v1::Snapshot&) {
              api.set_heartbeat_interval_seconds(0);
            }).heartbeat_interval,
            0s)
      << "0 turns the API's heartbeats off whatever the tier says";
}

TEST(RouteTableTest, CopiesTheTiersLimits) {
  v1::Tier tier = StreamingTier();
  tier.set_max_response_duration_seconds(3600);
  tier.set_idle_timeout_seconds(120);
  tier.set_max_concurrent_streams(50);
  RouteTable table = MustBuild(SnapshotOn(tier));
  EXPECT_EQ(table.tier().name, "standard");
  EXPECT_TRUE(table.tier().long_lived_connections);
  EXPECT_EQ(table.tier().max_response_duration, 3600s);
  EXPECT_EQ(table.tier().idle_timeout, 120s);
  EXPECT_EQ(table.tier().max_concurrent_streams, 50u);
  EXPECT_FALSE(MustBuild(SnapshotOn(ConsumptionTier())).tier().long_lived_connections);
}

TEST(RouteTableTest, RefusesAnInvalidSnapshot) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  snapshot.clear_tier();
  EXPECT_FALSE(RouteTable::Build(snapshot).ok());

  snapshot = SnapshotOn(ConsumptionTier());
  AddApi(snapshot, "events", "/events").set_sse(true);
  absl::StatusOr<RouteTable> table = RouteTable::Build(snapshot);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kFailedPrecondition)
      << "an SSE API cannot be served on a tier without long-lived connections";
}

// --- Diagnostics and cache settings ---

TEST(RouteTableTest, LogsEveryRequestWithTheClientIpWhenNoDiagnosticSettingExists) {
  Route route = RouteOfApi([](v1::Api&, v1::Snapshot&) {});
  EXPECT_FALSE(route.diagnostics.configured);
  EXPECT_EQ(route.diagnostics.sampling_percentage, 100u);
  EXPECT_TRUE(route.diagnostics.log_client_ip);
}

TEST(RouteTableTest, UsesTheApisDiagnosticSettingOverTheGlobalOne) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "users", "/users");
  v1::DiagnosticSetting& global = *snapshot.add_diagnostics();
  global.set_scope("global");
  global.set_sampling_percentage(10);
  global.add_headers("X-Request-Id");
  v1::DiagnosticSetting& own = *snapshot.add_diagnostics();
  own.set_scope("api:orders");
  own.set_verbosity(v1::VERBOSITY_ERROR);
  own.set_log_client_ip(true);
  own.add_headers("X-Tenant");
  own.set_request_body_bytes(512);
  own.set_response_body_bytes(1024);
  RouteTable table = MustBuild(snapshot);

  const DiagnosticConfig& orders = table.Match("gw", "/orders")->diagnostics;
  EXPECT_TRUE(orders.configured);
  EXPECT_EQ(orders.sampling_percentage, 100u) << "unset: 100, not the global setting's";
  EXPECT_EQ(orders.verbosity, v1::VERBOSITY_ERROR);
  EXPECT_TRUE(orders.log_client_ip);
  EXPECT_THAT(orders.headers, ElementsAre("X-Tenant"));
  EXPECT_EQ(orders.request_body_bytes, 512u);
  EXPECT_EQ(orders.response_body_bytes, 1024u);

  const DiagnosticConfig& users = table.Match("gw", "/users")->diagnostics;
  EXPECT_TRUE(users.configured);
  EXPECT_EQ(users.sampling_percentage, 10u);
  EXPECT_EQ(users.verbosity, v1::VERBOSITY_INFORMATION) << "unspecified: information";
  EXPECT_FALSE(users.log_client_ip);
  EXPECT_THAT(users.headers, ElementsAre("X-Request-Id"));
}

TEST(RouteTableTest, NeverLogsTheBodiesOfAnSseApi) {
  Route route = RouteOfApi([](v1::Api& api, v1::Snapshot& snapshot) {
    api.set_sse(true);
    v1::DiagnosticSetting& setting = *snapshot.add_diagnostics();
    setting.set_scope("api:api");
    setting.set_request_body_bytes(512);
    setting.set_response_body_bytes(512);
  });
  EXPECT_TRUE(route.diagnostics.configured);
  EXPECT_EQ(route.diagnostics.request_body_bytes, 0u);
  EXPECT_EQ(route.diagnostics.response_body_bytes, 0u);
}

TEST(RouteTableTest, CachesNothingWithoutACacheSetting) {
  EXPECT_FALSE(RouteOfApi([](v1::Api&, v1::Snapshot&) {}).cache.enabled);
}

TEST(RouteTableTest, UsesTheApisCacheSettingOverTheGlobalOne) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "users", "/users");
  AddApi(snapshot, "prices", "/prices");
  v1::CacheSetting& global = *snapshot.add_caches();
  global.set_scope("global");
  global.set_enabled(true);
  global.set_default_ttl_seconds(120);
  v1::CacheSetting& users = *snapshot.add_caches();
  users.set_scope("api:users");
  users.set_enabled(false);
  v1::CacheSetting& prices = *snapshot.add_caches();
  prices.set_scope("api:prices");
  prices.set_enabled(true);
  prices.set_max_entry_bytes(4096);
  RouteTable table = MustBuild(snapshot);

  const CacheConfig& orders_cache = table.Match("gw", "/orders")->cache;
  EXPECT_TRUE(orders_cache.enabled);
  EXPECT_EQ(orders_cache.default_ttl, 120s);
  EXPECT_EQ(orders_cache.max_entry_bytes, 1u << 20);
  EXPECT_FALSE(table.Match("gw", "/users")->cache.enabled);
  const CacheConfig& prices_cache = table.Match("gw", "/prices")->cache;
  EXPECT_TRUE(prices_cache.enabled);
  EXPECT_EQ(prices_cache.default_ttl, 60s) << "unset: 60 s, not the global setting's";
  EXPECT_EQ(prices_cache.max_entry_bytes, 4096u);
}

TEST(RouteTableTest, NeverCachesAnSseApi) {
  Route route = RouteOfApi([](v1::Api& api, v1::Snapshot& snapshot) {
    api.set_sse(true);
    v1::CacheSetting& setting = *snapshot.add_caches();
    setting.set_scope("api:api");
    setting.set_enabled(true);
  });
  EXPECT_FALSE(route.cache.enabled);
}

// --- Policies ---

TEST(RouteTableTest, MergesTheGlobalPolicyIntoTheApisThroughBase) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "users", "/users");
  AddPolicy(
      snapshot, "global",
      R"(<policies><inbound><rate-limit calls="5" renewal-period="10"/></inbound></policies>)");
  AddPolicy(snapshot, "api:orders",
            R"(<policies><inbound><base/><check-header name="X-Tenant"/></inbound></policies>)");
  RouteTable table = MustBuild(snapshot);

  const policy::Section& orders = table.Match("gw", "/orders")->policy->inbound;
  ASSERT_EQ(orders.steps.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<policy::RateLimit>(orders.steps[0]));
  EXPECT_TRUE(std::holds_alternative<policy::CheckHeader>(orders.steps[1]));
  const policy::Section& users = table.Match("gw", "/users")->policy->inbound;
  ASSERT_EQ(users.steps.size(), 1u) << "an API without a policy runs the global one";
  EXPECT_TRUE(std::holds_alternative<policy::RateLimit>(users.steps[0]));
}

TEST(RouteTableTest, LeavesOutThePolicyStepsThatWouldBufferAnSseStream) {
  Route route = RouteOfApi([](v1::Api& api, v1::Snapshot& snapshot) {
    api.set_sse(true);
    AddPolicy(snapshot, "global", R"(<policies>
      <inbound><cache-lookup/><validate-content max-size="100"/><check-header name="X-A"/></inbound>
      <backend><forward-request buffer-response="true" timeout="20"/></backend>
      <outbound><cache-store duration="60"/><set-header name="X-B"><value>b</value></set-header></outbound>
    </policies>)");
  });
  ASSERT_EQ(route.policy->inbound.steps.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<policy::CheckHeader>(route.policy->inbound.steps[0]));
  ASSERT_EQ(route.policy->outbound.steps.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<policy::SetHeader>(route.policy->outbound.steps[0]));
  ASSERT_EQ(route.policy->backend.steps.size(), 1u);
  const auto& forward = std::get<policy::ForwardRequest>(route.policy->backend.steps[0]);
  EXPECT_EQ(forward.buffer_response, false);
  EXPECT_EQ(forward.timeout, std::chrono::milliseconds(20s)) << "other settings stay";
}

TEST(RouteTableTest, KeepsBufferingPolicyStepsOfOrdinaryApis) {
  Route route = RouteOfApi([](v1::Api&, v1::Snapshot& snapshot) {
    AddPolicy(snapshot, "api:api",
              R"(<policies><inbound><cache-lookup/></inbound>
                 <backend><forward-request buffer-response="true"/></backend></policies>)");
  });
  ASSERT_EQ(route.policy->inbound.steps.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<policy::CacheLookup>(route.policy->inbound.steps[0]));
  ASSERT_EQ(route.policy->backend.steps.size(), 1u);
  EXPECT_EQ(std::get<policy::ForwardRequest>(route.policy->backend.steps[0]).buffer_response, true);
}

TEST(RouteTableTest, RefusesAPolicyItCannotCompileNamingItsScope) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddPolicy(snapshot, "api:orders", "<policies><inbound><unknown-policy/></inbound></policies>");
  absl::StatusOr<RouteTable> table = RouteTable::Build(snapshot);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(table.status().message()), HasSubstr("\"api:orders\""));
}

TEST(RouteTableTest, GivesEveryRouteAnEmptyPolicyWhenThereIsNone) {
  Route route = RouteOfApi([](v1::Api&, v1::Snapshot&) {});
  ASSERT_NE(route.policy, nullptr);
  EXPECT_EQ(*route.policy, policy::Document{});
}

// --- Subscriptions ---

TEST(RouteTableTest, FindsASubscriptionByTheHashOfEitherOfItsKeys) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "users", "/users");
  AddSubscription(snapshot, "team-a", "primary-a", {"orders", "users"}, 3)
      .add_key_sha256(Sha256Hex("secondary-a"));
  AddSubscription(snapshot, "team-b", "primary-b", {"users"});
  RouteTable table = MustBuild(snapshot);

  const SubscriptionGrant* a = table.FindSubscription(Sha256Hex("primary-a"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->name, "team-a");
  EXPECT_THAT(a->apis, UnorderedElementsAre("orders", "users"));
  EXPECT_EQ(a->max_concurrent_streams, 3u);
  EXPECT_EQ(table.FindSubscription(Sha256Hex("secondary-a")), a);
  const SubscriptionGrant* b = table.FindSubscription(Sha256Hex("primary-b"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->name, "team-b");
  EXPECT_THAT(b->apis, ElementsAre("users"));
  EXPECT_EQ(table.FindSubscription(Sha256Hex("unknown")), nullptr);
  EXPECT_EQ(table.FindSubscription("primary-a"), nullptr) << "keys are looked up by hash only";
}

TEST(RouteTableTest, FindsNoSubscriptionWhenThereAreNone) {
  RouteTable table = MustBuild(SnapshotOn(StreamingTier()));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.FindSubscription(Sha256Hex("any")), nullptr);
  EXPECT_EQ(table.Match("gw", "/"), nullptr);
}

}  // namespace
}  // namespace apim::dataplane
