// Shape rules: each bad input is INVALID_ARGUMENT and the message starts with the field's name.
#include "common/validation.h"

#include <gtest/gtest.h>

namespace apim {
namespace {

v1::Api GoodApi() {
  v1::Api api;
  api.set_name("orders");
  api.set_path_prefix("/orders");
  api.set_backend_url("http://127.0.0.1:9000/v1");
  return api;
}

void ExpectInvalid(const absl::Status& status, std::string_view field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(std::string(status.message()).starts_with(std::string(field) + ":"))
      << "expected the message to name " << field << ": " << status;
}

TEST(ValidationTest, AcceptsAWellFormedApi) { EXPECT_TRUE(Validate(GoodApi()).ok()); }

TEST(ValidationTest, RejectsBadApiNames) {
  for (const std::string& name : std::vector<std::string>{"", "Orders", "-orders", "orders-",
                                                          "or_ders", std::string(64, 'a')}) {
    v1::Api api = GoodApi();
    api.set_name(name);
    ExpectInvalid(Validate(api), "api.name");
  }
}

TEST(ValidationTest, RejectsBadPathPrefixes) {
  for (std::string prefix :
       {"", "orders", "/orders/", "/a//b", "/a/../b", "/a/..", "/a b", "/a?x=1", "/a#b"}) {
    v1::Api api = GoodApi();
    api.set_path_prefix(prefix);
    ExpectInvalid(Validate(api), "api.path_prefix");
  }
  v1::Api root = GoodApi();
  root.set_path_prefix("/");
  EXPECT_TRUE(Validate(root).ok());
}

TEST(ValidationTest, RejectsBackendUrlsThatAreNotPlainHttp) {
  for (std::string url :
       {"", "orders", "ftp://host/x", "http://", "http://user:pw@host/", "http://host:0/",
        "http://host:99999/", "http://host/?q=1", "http://host/#f", "/relative"}) {
    v1::Api api = GoodApi();
    api.set_backend_url(url);
    SCOPED_TRACE(url);
    ExpectInvalid(Validate(api), "api.backend_url");
  }
  v1::Api https = GoodApi();
  https.set_backend_url("https://orders.internal:8443");
  EXPECT_TRUE(Validate(https).ok());
}

TEST(ValidationTest, RejectsBadHostsGatewaysAndTimeouts) {
  v1::Api api = GoodApi();
  api.set_host("API.example.com:80");
  ExpectInvalid(Validate(api), "api.host");

  api = GoodApi();
  api.add_gateways("edge");
  api.add_gateways("edge");
  ExpectInvalid(Validate(api), "api.gateways[1]");

  api = GoodApi();
  api.set_timeout_seconds(0);
  ExpectInvalid(Validate(api), "api.timeout_seconds");
}

TEST(ValidationTest, RejectsTiersWhoseHeartbeatCannotBeatTheIdleTimeout) {
  v1::Tier tier;
  tier.set_name("custom");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(30);
  tier.set_heartbeat_interval_seconds(30);
  ExpectInvalid(Validate(tier), "tier.heartbeat_interval_seconds");
  tier.set_idle_timeout_seconds(0);
  ExpectInvalid(Validate(tier), "tier.idle_timeout_seconds");
}

TEST(ValidationTest, RequiresAResponseLimitOnTiersWithoutLongLivedConnections) {
  v1::Tier tier;
  tier.set_name("tiny");
  tier.set_idle_timeout_seconds(240);
  ExpectInvalid(Validate(tier), "tier.max_response_duration_seconds");
  tier.set_max_response_duration_seconds(30);
  EXPECT_TRUE(Validate(tier).ok());
}

TEST(ValidationTest, GatewaysNeedANameAndATier) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  ExpectInvalid(Validate(gateway), "gateway.tier");
  gateway.set_tier("standard");
  EXPECT_TRUE(Validate(gateway).ok());
}

TEST(ValidationTest, ScopesAreGlobalOrNameAnApi) {
  v1::DiagnosticSetting diagnostic;
  for (std::string scope : {"", "all", "api:", "api:Bad", "operation:orders/list"}) {
    diagnostic.set_scope(scope);
    ExpectInvalid(Validate(diagnostic), "diagnostic_setting.scope");
  }
  diagnostic.set_scope("api:orders");
  EXPECT_TRUE(Validate(diagnostic).ok());

  v1::Policy policy;
  policy.set_xml("<policies/>");
  policy.set_scope("operation:orders/list");
  EXPECT_TRUE(Validate(policy).ok());
  policy.set_scope("operation:orders");
  ExpectInvalid(Validate(policy), "policy.scope");
}

TEST(ValidationTest, LimitsDiagnosticsToWhatAGatewayCanLog) {
  v1::DiagnosticSetting diagnostic;
  diagnostic.set_scope("global");
  diagnostic.set_sampling_percentage(101);
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.sampling_percentage");
  diagnostic.clear_sampling_percentage();
  diagnostic.set_request_body_bytes(8193);
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.request_body_bytes");
  diagnostic.set_request_body_bytes(8192);
  diagnostic.add_headers("bad header");
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.headers[0]");
}

TEST(ValidationTest, CacheSettingsNeedPositiveLimits) {
  v1::CacheSetting cache;
  cache.set_scope("global");
  cache.set_default_ttl_seconds(0);
  ExpectInvalid(Validate(cache), "cache_setting.default_ttl_seconds");
  cache.set_default_ttl_seconds(60);
  cache.set_max_entry_bytes(0);
  ExpectInvalid(Validate(cache), "cache_setting.max_entry_bytes");
}

TEST(ValidationTest, PolicyXmlMustParseAndNamesTheLineOfTheError) {
  v1::Policy policy;
  policy.set_scope("global");
  policy.set_xml("<policies>\n  <inbound>\n    <base/>\n  </outbound>\n</policies>");
  absl::Status status = Validate(policy);
  ExpectInvalid(status, "policy.xml");
  EXPECT_NE(status.message().find("line 4"), std::string::npos) << status;
  policy.set_xml("<inbound/>");
  ExpectInvalid(Validate(policy), "policy.xml");
}

// Rules made stricter after documents were stored: refused for new writes, served when stored.
TEST(ValidationTest, NamesAndDescriptionsMustNotCarryTerminalEscapes) {
  v1::Api api = GoodApi();
  for (const char* name : {"\x1b[2Jwiped", "bell\a", "del\x7f",
                           "csi\xc2\x9b"
                           "31m",
                           "two\nlines"}) {
    api.set_display_name(name);
    ExpectInvalid(Validate(api), "api.display_name");
    EXPECT_TRUE(Validate(api, Rules::kServe).ok()) << name;
  }
  api.set_display_name("Orders — ünïcode is fine");
  EXPECT_TRUE(Validate(api).ok());
  api.set_description("Line one\nline two\twith a tab");
  EXPECT_TRUE(Validate(api).ok());
  api.set_description("\x1b]0;title\a");
  ExpectInvalid(Validate(api), "api.description");

  v1::Product product;
  product.set_name("gold");
  product.set_display_name("\x1b[31mGold");
  ExpectInvalid(Validate(product), "product.display_name");
  v1::Subscription subscription;
  subscription.set_name("alice");
  subscription.set_scope("all");
  subscription.set_display_name("\x1b[31mAlice");
  ExpectInvalid(Validate(subscription), "subscription.display_name");
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  gateway.set_description("\x1b[31m");
  ExpectInvalid(Validate(gateway), "gateway.description");
}

// A standalone worker's --config file is a snapshot: its diagnostic and cache settings are held
// to the rules the control plane applies.
TEST(ValidationTest, ASnapshotsDiagnosticAndCacheSettingsAreValidated) {
  v1::Snapshot snapshot;
  v1::Tier& tier = *snapshot.mutable_tier();
  tier.set_name("standard");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(240);
  *snapshot.add_apis() = GoodApi();
  ASSERT_TRUE(Validate(snapshot).ok()) << Validate(snapshot);
  v1::DiagnosticSetting& diagnostic = *snapshot.add_diagnostics();
  diagnostic.set_scope("global");
  diagnostic.add_headers("X-Evil\r\nInjected");
  ExpectInvalid(Validate(snapshot), "diagnostic_setting.headers[0]");
  diagnostic.clear_headers();
  diagnostic.set_request_body_bytes(100000000);
  ExpectInvalid(Validate(snapshot), "diagnostic_setting.request_body_bytes");
  diagnostic.set_request_body_bytes(0);
  snapshot.add_caches()->set_scope("global");
  snapshot.mutable_caches(0)->set_max_entry_bytes(0);
  ExpectInvalid(Validate(snapshot), "cache_setting.max_entry_bytes");
}

}  // namespace
}  // namespace apim
