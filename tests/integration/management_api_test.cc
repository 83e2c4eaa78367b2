// The real apim-controlplane binary on a loopback port, driven through its gRPC Management API:
// CRUD round trips, every error code, authentication, and restarts that keep the data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "tests/support/control_plane.h"

namespace apim {
namespace {

using apim::testing::AuthorizedContext;
using apim::testing::ChildProcess;
using apim::testing::ControlPlane;
using apim::testing::ExitResult;
using apim::testing::kTestAdminToken;
using apim::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ManagementApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_.Start();
    stub_ = control_plane_.Stub();
  }

  v1::Gateway CreateGateway(const std::string& name, const std::string& tier) {
    v1::CreateGatewayRequest request;
    request.mutable_gateway()->set_name(name);
    request.mutable_gateway()->set_tier(tier);
    v1::Gateway gateway;
    grpc::Status status = stub_->CreateGateway(AuthorizedContext().get(), request, &gateway);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return gateway;
  }

  grpc::Status CreateApi(const std::string& name, const std::string& prefix, bool sse,
                         const std::vector<std::string>& gateways, v1::Api* out = nullptr) {
    v1::CreateApiRequest request;
    v1::Api& api = *request.mutable_api();
    api.set_name(name);
    api.set_path_prefix(prefix);
    api.set_backend_url("http://127.0.0.1:9000/base");
    api.set_sse(sse);
    for (const auto& gateway : gateways) api.add_gateways(gateway);
    v1::Api ignored;
    return stub_->CreateApi(AuthorizedContext().get(), request, out ? out : &ignored);
  }

  grpc::Status GetApi(const std::string& name, v1::Api* out) {
    v1::GetRequest request;
    request.set_name(name);
    return stub_->GetApi(AuthorizedContext().get(), request, out);
  }

  TempDir dir_;
  ControlPlane control_plane_{dir_.path()};
  std::unique_ptr<v1::Management::Stub> stub_;
};

TEST_F(ManagementApiTest, ApiRoundTripsThroughCreateGetListUpdateAndDelete) {
  CreateGateway("edge", "standard");
  v1::Api created;
  ASSERT_TRUE(CreateApi("orders", "/orders", false, {"edge"}, &created).ok());
  EXPECT_FALSE(created.etag().empty());
  EXPECT_TRUE(created.has_create_time());

  v1::Api fetched;
  ASSERT_TRUE(GetApi("orders", &fetched).ok());
  EXPECT_EQ(fetched.backend_url(), "http://127.0.0.1:9000/base");
  EXPECT_EQ(fetched.gateways(0), "edge");

  v1::ListApisResponse listed;
  ASSERT_TRUE(stub_->ListApis(AuthorizedContext().get(), v1::ListRequest(), &listed).ok());
  ASSERT_EQ(listed.apis_size(), 1);
  EXPECT_EQ(listed.apis(0).name(), "orders");

  // A masked update changes only the named field.
  v1::UpdateApiRequest update;
  update.mutable_api()->set_name("orders");
  update.mutable_api()->set_backend_url("https://orders.internal");
  update.mutable_api()->set_path_prefix("/ignored");
  update.mutable_update_mask()->add_paths("backend_url");
  v1::Api updated;
  ASSERT_TRUE(stub_->UpdateApi(AuthorizedContext().get(), update, &updated).ok());
  EXPECT_EQ(updated.backend_url(), "https://orders.internal");
  EXPECT_EQ(updated.path_prefix(), "/orders");
  EXPECT_EQ(updated.gateways_size(), 1);
  EXPECT_NE(updated.etag(), created.etag());

  // Without a mask the resource is replaced whole.
  v1::UpdateApiRequest replace;
  *replace.mutable_api() = updated;
  replace.mutable_api()->set_path_prefix("/v2/orders");
  replace.mutable_api()->clear_gateways();
  ASSERT_TRUE(stub_->UpdateApi(AuthorizedContext().get(), replace, &updated).ok());
  EXPECT_EQ(updated.path_prefix(), "/v2/orders");
  EXPECT_EQ(updated.gateways_size(), 0);

  v1::DeleteRequest remove;
  remove.set_name("orders");
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->DeleteApi(AuthorizedContext().get(), remove, &empty).ok());
  EXPECT_EQ(GetApi("orders", &fetched).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ManagementApiTest, TiersGatewaysSettingsAndPoliciesRoundTrip) {
  v1::CreateTierRequest tier_request;
  v1::Tier& tier = *tier_request.mutable_tier();
  tier.set_name("gold");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(300);
  tier.set_heartbeat_interval_seconds(15);
  tier.set_built_in(true);  // Output only: ignored.
  v1::Tier created_tier;
  ASSERT_TRUE(stub_->CreateTier(AuthorizedContext().get(), tier_request, &created_tier).ok());
  EXPECT_FALSE(created_tier.built_in());
  EXPECT_EQ(created_tier.heartbeat_interval_seconds(), 15u);

  CreateGateway("edge", "gold");
  v1::UpdateGatewayRequest move;
  move.mutable_gateway()->set_name("edge");
  move.mutable_gateway()->set_tier("premium");
  move.mutable_update_mask()->add_paths("tier");
  v1::Gateway moved;
  ASSERT_TRUE(stub_->UpdateGateway(AuthorizedContext().get(), move, &moved).ok());
  EXPECT_EQ(moved.tier(), "premium");

  ASSERT_TRUE(CreateApi("orders", "/orders", false, {"edge"}).ok());
  v1::CreateDiagnosticSettingRequest diagnostic;
  diagnostic.mutable_diagnostic_setting()->set_scope("api:orders");
  diagnostic.mutable_diagnostic_setting()->set_sampling_percentage(25);
  diagnostic.mutable_diagnostic_setting()->set_verbosity(v1::VERBOSITY_ERROR);
  v1::DiagnosticSetting created_diagnostic;
  ASSERT_TRUE(
      stub_->CreateDiagnosticSetting(AuthorizedContext().get(), diagnostic, &created_diagnostic)
          .ok());
  EXPECT_EQ(created_diagnostic.sampling_percentage(), 25u);

  v1::CreateCacheSettingRequest cache;
  cache.mutable_cache_setting()->set_scope("global");
  cache.mutable_cache_setting()->set_enabled(true);
  v1::CacheSetting created_cache;
  ASSERT_TRUE(stub_->CreateCacheSetting(AuthorizedContext().get(), cache, &created_cache).ok());

  v1::CreatePolicyRequest policy;
  policy.mutable_policy()->set_scope("operation:orders/list");
  policy.mutable_policy()->set_xml("<policies><inbound><base/></inbound></policies>");
  v1::Policy created_policy;
  ASSERT_TRUE(stub_->CreatePolicy(AuthorizedContext().get(), policy, &created_policy).ok());

  v1::ListPoliciesResponse policies;
  ASSERT_TRUE(stub_->ListPolicies(AuthorizedContext().get(), v1::ListRequest(), &policies).ok());
  ASSERT_EQ(policies.policies_size(), 1);
  EXPECT_EQ(policies.policies(0).scope(), "operation:orders/list");

  v1::GetRequest get;
  get.set_name("gold");
  v1::Tier fetched_tier;
  ASSERT_TRUE(stub_->GetTier(AuthorizedContext().get(), get, &fetched_tier).ok());
  v1::DeleteRequest remove;
  remove.set_name("gold");
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->DeleteTier(AuthorizedContext().get(), remove, &empty).ok());
}

TEST_F(ManagementApiTest, RefusesCallsWithoutAValidAdminTokenAndChangesNothing) {
  v1::CreateGatewayRequest request;
  request.mutable_gateway()->set_name("edge");
  request.mutable_gateway()->set_tier("standard");
  v1::Gateway gateway;
  for (std::string token : {"", "wrong-token-but-long-enough"}) {
    grpc::Status status = stub_->CreateGateway(AuthorizedContext(token).get(), request, &gateway);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << token;
  }
  grpc::ClientContext basic;
  basic.AddMetadata("authorization", "Basic dXNlcjpwYXNz");
  EXPECT_EQ(stub_->CreateGateway(&basic, request, &gateway).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ListGatewaysResponse listed;
  ASSERT_TRUE(stub_->ListGateways(AuthorizedContext().get(), v1::ListRequest(), &listed).ok());
  EXPECT_EQ(listed.gateways_size(), 0);
}

TEST_F(ManagementApiTest, BadInputIsInvalidArgumentNamingTheField) {
  grpc::Status status = CreateApi("orders", "no-slash", false, {});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("api.path_prefix:"));

  status = CreateApi("Bad_Name", "/x", false, {});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("api.name:"));

  ASSERT_TRUE(CreateApi("orders", "/orders", false, {}).ok());
  v1::UpdateApiRequest update;
  update.mutable_api()->set_name("orders");
  update.mutable_update_mask()->add_paths("no_such_field");
  v1::Api api;
  status = stub_->UpdateApi(AuthorizedContext().get(), update, &api);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("no_such_field"));

  update.mutable_update_mask()->Clear();
  update.mutable_update_mask()->add_paths("name");
  EXPECT_EQ(stub_->UpdateApi(AuthorizedContext().get(), update, &api).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A masked update whose result is invalid is refused and changes nothing.
  update.mutable_update_mask()->Clear();
  update.mutable_update_mask()->add_paths("backend_url");
  update.mutable_api()->set_backend_url("ftp://nope");
  status = stub_->UpdateApi(AuthorizedContext().get(), update, &api);
  EXPECT_THAT(status.error_message(), StartsWith("api.backend_url:"));
  ASSERT_TRUE(GetApi("orders", &api).ok());
  EXPECT_EQ(api.backend_url(), "http://127.0.0.1:9000/base");

  v1::ListRequest too_big;
  too_big.set_page_size(5000);
  v1::ListApisResponse listed;
  status = stub_->ListApis(AuthorizedContext().get(), too_big, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("page_size:"));
}

TEST_F(ManagementApiTest, MissingAndDuplicateResourcesAreNotFoundAndAlreadyExists) {
  v1::Api api;
  grpc::Status status = GetApi("ghost", &api);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("\"ghost\""));

  status = CreateApi("orders", "/orders", false, {"ghost-gateway"});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), StartsWith("api.gateways[0]:"));

  ASSERT_TRUE(CreateApi("orders", "/orders", false, {}).ok());
  EXPECT_EQ(CreateApi("orders", "/other", false, {}).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CreateApi("orders2", "/orders", false, {}).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  v1::DeleteRequest remove;
  remove.set_name("ghost");
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->DeleteApi(AuthorizedContext().get(), remove, &empty).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ManagementApiTest, AStaleEtagIsAbortedAndTheCurrentOneSucceeds) {
  v1::Gateway gateway = CreateGateway("edge", "standard");
  v1::UpdateGatewayRequest update;
  update.mutable_gateway()->set_name("edge");
  update.mutable_gateway()->set_description("first");
  update.mutable_gateway()->set_etag(gateway.etag());
  update.mutable_update_mask()->add_paths("description");
  v1::Gateway first;
  ASSERT_TRUE(stub_->UpdateGateway(AuthorizedContext().get(), update, &first).ok());

  update.mutable_gateway()->set_description("second");  // Still carries the old etag.
  v1::Gateway second;
  grpc::Status status = stub_->UpdateGateway(AuthorizedContext().get(), update, &second);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);

  v1::DeleteRequest remove;
  remove.set_name("edge");
  remove.set_etag(gateway.etag());
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->DeleteGateway(AuthorizedContext().get(), remove, &empty).error_code(),
            grpc::StatusCode::ABORTED);
  remove.set_etag(first.etag());
  EXPECT_TRUE(stub_->DeleteGateway(AuthorizedContext().get(), remove, &empty).ok());
}

TEST_F(ManagementApiTest, SseApisAreRefusedOnTiersWithoutLongLivedConnections) {
  CreateGateway("cheap", "consumption");
  grpc::Status status = CreateApi("feed", "/feed", true, {"cheap"});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), StartsWith("api.sse:"));
  EXPECT_THAT(status.error_message(), HasSubstr("consumption"));
  EXPECT_THAT(status.error_message(), HasSubstr("premium"));

  CreateGateway("edge", "standard");
  ASSERT_TRUE(CreateApi("feed", "/feed", true, {"edge"}).ok());
  v1::UpdateGatewayRequest move;
  move.mutable_gateway()->set_name("edge");
  move.mutable_gateway()->set_tier("consumption");
  move.mutable_update_mask()->add_paths("tier");
  v1::Gateway moved;
  status = stub_->UpdateGateway(AuthorizedContext().get(), move, &moved);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), StartsWith("gateway.tier:"));

  v1::DeleteRequest remove;
  remove.set_name("standard");
  google::protobuf::Empty empty;
  EXPECT_EQ(stub_->DeleteTier(AuthorizedContext().get(), remove, &empty).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ManagementApiTest, NothingMayBufferCacheOrLogTheBodyOfAnSseApi) {
  CreateGateway("edge", "standard");
  ASSERT_TRUE(CreateApi("feed", "/feed", true, {"edge"}).ok());
  auto expect_refused = [](const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << field;
    EXPECT_THAT(status.error_message(), StartsWith(field + ":"));
    EXPECT_THAT(status.error_message(), HasSubstr("streams server-sent events"));
  };
  v1::CreateCacheSettingRequest cache;
  cache.mutable_cache_setting()->set_scope("api:feed");
  cache.mutable_cache_setting()->set_enabled(true);
  v1::CacheSetting cache_out;
  expect_refused(stub_->CreateCacheSetting(AuthorizedContext().get(), cache, &cache_out),
                 "cache_setting.enabled");

  v1::CreateDiagnosticSettingRequest diagnostic;
  diagnostic.mutable_diagnostic_setting()->set_scope("api:feed");
  diagnostic.mutable_diagnostic_setting()->set_response_body_bytes(100);
  v1::DiagnosticSetting diagnostic_out;
  expect_refused(
      stub_->CreateDiagnosticSetting(AuthorizedContext().get(), diagnostic, &diagnostic_out),
      "diagnostic_setting.response_body_bytes");

  for (const char* xml :
       {"<policies><inbound><validate-content max-size=\"100\"/></inbound></policies>",
        "<policies><inbound><cache-lookup/></inbound></policies>",
        "<policies><backend><forward-request buffer-response=\"true\"/></backend></policies>"}) {
    v1::CreatePolicyRequest policy;
    policy.mutable_policy()->set_scope("api:feed");
    policy.mutable_policy()->set_xml(xml);
    v1::Policy policy_out;
    expect_refused(stub_->CreatePolicy(AuthorizedContext().get(), policy, &policy_out),
                   "policy.xml");
  }

  v1::UpdateApiRequest buffer;
  buffer.mutable_api()->set_name("feed");
  buffer.mutable_api()->set_buffer_response(true);
  buffer.mutable_update_mask()->add_paths("buffer_response");
  v1::Api api;
  expect_refused(stub_->UpdateApi(AuthorizedContext().get(), buffer, &api), "api.sse");

  // The other way round: an API with caching cannot become an SSE API.
  ASSERT_TRUE(CreateApi("orders", "/orders", false, {"edge"}).ok());
  cache.mutable_cache_setting()->set_scope("api:orders");
  ASSERT_TRUE(stub_->CreateCacheSetting(AuthorizedContext().get(), cache, &cache_out).ok());
  v1::UpdateApiRequest to_sse;
  to_sse.mutable_api()->set_name("orders");
  to_sse.mutable_api()->set_sse(true);
  to_sse.mutable_update_mask()->add_paths("sse");
  expect_refused(stub_->UpdateApi(AuthorizedContext().get(), to_sse, &api), "api.sse");
}

TEST_F(ManagementApiTest, GlobalBodyLoggingAndCachingAreAcceptedButReportedAsNotAppliedToSse) {
  v1::CreateDiagnosticSettingRequest diagnostic;
  diagnostic.mutable_diagnostic_setting()->set_scope("global");
  diagnostic.mutable_diagnostic_setting()->set_request_body_bytes(512);
  v1::DiagnosticSetting diagnostic_out;
  ASSERT_TRUE(
      stub_->CreateDiagnosticSetting(AuthorizedContext().get(), diagnostic, &diagnostic_out).ok());
  ASSERT_EQ(diagnostic_out.warnings_size(), 1);
  EXPECT_THAT(diagnostic_out.warnings(0), StartsWith("not applied to SSE APIs"));

  v1::CreateCacheSettingRequest cache;
  cache.mutable_cache_setting()->set_scope("global");
  cache.mutable_cache_setting()->set_enabled(true);
  v1::CacheSetting cache_out;
  ASSERT_TRUE(stub_->CreateCacheSetting(AuthorizedContext().get(), cache, &cache_out).ok());
  EXPECT_THAT(cache_out.warnings(0), StartsWith("not applied to SSE APIs"));

  v1::CreatePolicyRequest policy;
  policy.mutable_policy()->set_scope("global");
  policy.mutable_policy()->set_xml(
      "<policies><inbound><cache-lookup/></inbound><outbound><cache-store duration=\"60\"/>"
      "</outbound></policies>");
  v1::Policy policy_out;
  ASSERT_TRUE(stub_->CreatePolicy(AuthorizedContext().get(), policy, &policy_out).ok());
  ASSERT_GE(policy_out.warnings_size(), 1);
  EXPECT_THAT(policy_out.warnings(0), HasSubstr("cache-lookup"));
}

TEST_F(ManagementApiTest, ABadPolicyDocumentIsRefusedNamingTheLineAndElement) {
  v1::CreatePolicyRequest policy;
  policy.mutable_policy()->set_scope("global");
  policy.mutable_policy()->set_xml(
      "<policies>\n  <inbound>\n    <rate-limit calls=\"0\" renewal-period=\"10\"/>\n"
      "  </inbound>\n</policies>");
  v1::Policy out;
  grpc::Status status = stub_->CreatePolicy(AuthorizedContext().get(), policy, &out);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("line 3"));
  EXPECT_THAT(status.error_message(), HasSubstr("rate-limit"));
}

TEST_F(ManagementApiTest, DataSurvivesARestartAndAKill) {
  CreateGateway("edge", "standard");
  ASSERT_TRUE(CreateApi("orders", "/orders", false, {"edge"}).ok());
  stub_.reset();
  EXPECT_EQ(control_plane_.Stop(SIGTERM).code, 0);
  control_plane_.Start();
  stub_ = control_plane_.Stub();
  v1::Api api;
  ASSERT_TRUE(GetApi("orders", &api).ok());
  EXPECT_EQ(api.gateways(0), "edge");

  // An acknowledged change is durable even if the process dies right after (synchronous=FULL).
  ASSERT_TRUE(CreateApi("payments", "/payments", false, {"edge"}).ok());
  control_plane_.Stop(SIGKILL);
  control_plane_.Start();
  stub_ = control_plane_.Stub();
  EXPECT_TRUE(GetApi("payments", &api).ok());
}

TEST(ManagementApiFirstStartTest, GeneratesAnAdminTokenOnceAndKeepsOnlyItsHash) {
  TempDir dir;
  ControlPlane control_plane(dir.path(), {{"APIM_ADMIN_TOKEN", ""}});
  control_plane.Start();
  // The banner is written before the server listens, so it is complete by now.
  std::string banner = control_plane.process().Stderr();
  size_t at = banner.find("export APIM_TOKEN=");
  ASSERT_NE(at, std::string::npos) << banner;
  std::string token = banner.substr(at + 18, 64);

  auto stub = control_plane.Stub();
  v1::ListTiersResponse tiers;
  ASSERT_TRUE(stub->ListTiers(AuthorizedContext(token).get(), v1::ListRequest(), &tiers).ok());
  EXPECT_EQ(stub->ListTiers(AuthorizedContext().get(), v1::ListRequest(), &tiers).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  for (const char* suffix : {"", "-wal"}) {
    std::string file = apim::testing::ReadFile(control_plane.database().string() + suffix);
    EXPECT_EQ(file.find(token), std::string::npos) << "the token itself must not be stored";
  }

  stub.reset();
  EXPECT_EQ(control_plane.Stop(SIGTERM).code, 0);
  control_plane.Start();
  EXPECT_EQ(control_plane.process().Stderr().find("APIM_TOKEN="), std::string::npos)
      << "the token is shown only on first start";
  stub = control_plane.Stub();
  EXPECT_TRUE(stub->ListTiers(AuthorizedContext(token).get(), v1::ListRequest(), &tiers).ok());
}

TEST(ManagementApiFirstStartTest, AcceptsTheAdminTokenOfAFileSavedWithCrlf) {
  TempDir dir;
  const std::filesystem::path token_file = dir.path() / "admin-token";
  std::ofstream(token_file, std::ios::binary) << kTestAdminToken << "\r\n";
  ControlPlane control_plane(dir.path(), {});
  control_plane.AddArgs({"--admin-token-file", token_file.string()});
  control_plane.Start();

  auto stub = control_plane.Stub();
  v1::ListTiersResponse tiers;
  grpc::Status status = stub->ListTiers(AuthorizedContext().get(), v1::ListRequest(), &tiers);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// A command-line mistake is a usage error (64, as for apimctl and the gateway) naming the flag,
// and an unknown log level is one (it used to turn logging off).
TEST(ManagementApiFirstStartTest, ACommandLineMistakeExits64NamingTheFlag) {
  TempDir dir;
  ChildProcess process(APIM_CONTROLPLANE_BIN,
                       {"--db", (dir.path() / "apim.db").string(), "--log-level", "verbose"},
                       dir.path(), {});
  ExitResult exit = process.WaitForExit(std::chrono::seconds(10));
  ASSERT_TRUE(exit.exited);
  EXPECT_EQ(exit.code, 64);
  EXPECT_THAT(process.Stderr(), HasSubstr("--log-level"));
}

}  // namespace
}  // namespace apim
