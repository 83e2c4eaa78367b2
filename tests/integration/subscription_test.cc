// Products and subscriptions end to end: keys shown once and stored hashed, checked by real
// workers (header or query), never forwarded, rotated without downtime, rate limits and stream
// limits counted per subscription.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/control_plane.h"
#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"
#include "tests/support/worker_health.h"

namespace apim {
namespace {

using apim::testing::AuthorizedContext;
using apim::testing::BackendProcess;
using apim::testing::ControlPlane;
using apim::testing::GatewayProcess;
using apim::testing::HttpRequest;
using apim::testing::RawConnection;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using apim::testing::WorkerHealth;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

class SubscriptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_.Start();
    stub_ = control_plane_.Stub();
    v1::CreateGatewayRequest gateway;
    gateway.mutable_gateway()->set_name("edge");
    gateway.mutable_gateway()->set_tier("standard");
    v1::Gateway created;
    ASSERT_TRUE(stub_->CreateGateway(AuthorizedContext().get(), gateway, &created).ok());
    CreateApi("orders", false);
    CreateApi("feed", true);
    CreateApi("other", false);
    v1::CreateProductRequest product;
    product.mutable_product()->set_name("gold");
    product.mutable_product()->add_apis("orders");
    product.mutable_product()->add_apis("feed");
    v1::Product made;
    ASSERT_TRUE(stub_->CreateProduct(AuthorizedContext().get(), product, &made).ok());
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name("edge");
    v1::GatewayToken token;
    ASSERT_TRUE(stub_->RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());
    token_ = token.token();
  }

  void CreateApi(const std::string& name, bool sse) {
    v1::CreateApiRequest request;
    request.mutable_api()->set_name(name);
    request.mutable_api()->set_path_prefix("/" + name);
    request.mutable_api()->set_backend_url("http://127.0.0.1:" + std::to_string(backend_.port()));
    request.mutable_api()->set_sse(sse);
    request.mutable_api()->set_subscription_required(true);
    request.mutable_api()->add_gateways("edge");
    v1::Api api;
    grpc::Status status = stub_->CreateApi(AuthorizedContext().get(), request, &api);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  v1::Subscription Subscribe(const std::string& name, const std::string& scope,
                             uint32_t max_streams = 0) {
    v1::CreateSubscriptionRequest request;
    request.mutable_subscription()->set_name(name);
    request.mutable_subscription()->set_scope(scope);
    request.mutable_subscription()->set_max_concurrent_streams(max_streams);
    v1::Subscription subscription;
    grpc::Status status =
        stub_->CreateSubscription(AuthorizedContext().get(), request, &subscription);
    EXPECT_TRUE(status.ok()) << status.error_message();
    last_version_ = std::stoull(subscription.etag());
    return subscription;
  }

  // A worker that has applied the latest change.
  std::unique_ptr<GatewayProcess> Worker() {
    auto worker = GatewayProcess::Join(dir_.path(), control_plane_.address(), "edge", token_, "w1");
    EXPECT_TRUE(WaitForFileContent(
        worker->process().stderr_path(),
        "applied config version " + std::to_string(last_version_) + " from", 20s));
    return worker;
  }

  static std::string KeyHeader(const std::string& key) {
    return key.empty() ? "" : "Ocp-Apim-Subscription-Key: " + key + "\r\n";
  }

  int Get(GatewayProcess& worker, const std::string& target, const std::string& key) {
    return HttpRequest(worker.port(), "GET", target, KeyHeader(key)).status;
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  ControlPlane control_plane_{dir_.path()};
  std::unique_ptr<v1::Management::Stub> stub_;
  std::string token_;
  uint64_t last_version_ = 0;
};

TEST_F(SubscriptionTest, KeysAreShownOnceAndOnlyTheirHashesAreStored) {
  v1::Subscription created = Subscribe("acme", "product:gold");
  EXPECT_EQ(created.primary_key().size(), 64u);
  EXPECT_EQ(created.secondary_key().size(), 64u);
  EXPECT_NE(created.primary_key(), created.secondary_key());
  EXPECT_TRUE(created.primary_key_sha256().empty());
  v1::GetRequest get;
  get.set_name("acme");
  v1::Subscription fetched;
  ASSERT_TRUE(stub_->GetSubscription(AuthorizedContext().get(), get, &fetched).ok());
  EXPECT_TRUE(fetched.primary_key().empty());
  EXPECT_TRUE(fetched.primary_key_sha256().empty());
  for (const char* suffix : {"", "-wal"}) {
    std::string file = apim::testing::ReadFile(control_plane_.database().string() + suffix);
    EXPECT_EQ(file.find(created.primary_key()), std::string::npos);
  }
  v1::CreateSubscriptionRequest bad;
  bad.mutable_subscription()->set_name("x");
  bad.mutable_subscription()->set_scope("product:nope");
  EXPECT_EQ(stub_->CreateSubscription(AuthorizedContext().get(), bad, &fetched).error_code(),
            grpc::StatusCode::NOT_FOUND);
  bad.mutable_subscription()->set_scope("everything");
  EXPECT_EQ(stub_->CreateSubscription(AuthorizedContext().get(), bad, &fetched).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SubscriptionTest, WorkersCheckTheKeyAndNeverForwardIt) {
  v1::Subscription acme = Subscribe("acme", "product:gold");
  auto worker = Worker();
  WorkerHealth health(*worker, "/orders/json", KeyHeader(acme.primary_key()));
  auto missing = HttpRequest(worker->port(), "GET", "/orders/echo");
  EXPECT_EQ(missing.status, 401);
  EXPECT_THAT(missing.body, HasSubstr("Ocp-Apim-Subscription-Key"));
  EXPECT_EQ(Get(*worker, "/orders/echo", "wrong"), 401);
  EXPECT_EQ(Get(*worker, "/other/echo", acme.primary_key()), 401) << "not in the product";
  auto echo = HttpRequest(worker->port(), "GET", "/orders/echo",
                          "Ocp-Apim-Subscription-Key: " + acme.primary_key() + "\r\n");
  EXPECT_EQ(echo.status, 200);
  EXPECT_THAT(echo.body, Not(HasSubstr(acme.primary_key())));
  EXPECT_THAT(echo.body, Not(HasSubstr("ocp-apim-subscription-key")));
  auto by_query = HttpRequest(worker->port(), "GET",
                              "/orders/echo?a=1&subscription-key=" + acme.secondary_key());
  EXPECT_EQ(by_query.status, 200);
  EXPECT_THAT(by_query.body, Not(HasSubstr(acme.secondary_key())));
  EXPECT_THAT(by_query.body, HasSubstr("\"target\":\"/echo?a=1\""));
  health.ExpectRecovered();
}

TEST_F(SubscriptionTest, ARegeneratedKeyReplacesTheOldOneWhileTheOtherKeepsWorking) {
  v1::Subscription acme = Subscribe("acme", "all");
  auto worker = Worker();
  ASSERT_EQ(Get(*worker, "/orders/json", acme.primary_key()), 200);
  v1::RegenerateSubscriptionKeyRequest regenerate;
  regenerate.set_name("acme");
  regenerate.set_key("primary");
  v1::Subscription rotated;
  ASSERT_TRUE(
      stub_->RegenerateSubscriptionKey(AuthorizedContext().get(), regenerate, &rotated).ok());
  EXPECT_EQ(rotated.primary_key().size(), 64u);
  EXPECT_NE(rotated.primary_key(), acme.primary_key());
  ASSERT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "applied config version " + rotated.etag() + " from", 20s));
  WorkerHealth health(*worker, "/orders/json", KeyHeader(acme.secondary_key()));
  EXPECT_EQ(Get(*worker, "/orders/json", acme.primary_key()), 401);
  EXPECT_EQ(Get(*worker, "/orders/json", rotated.primary_key()), 200);
  EXPECT_EQ(Get(*worker, "/orders/json", acme.secondary_key()), 200);
  health.ExpectRecovered();
}

TEST_F(SubscriptionTest, RateLimitsAndStreamLimitsCountPerSubscription) {
  v1::CreatePolicyRequest policy;
  policy.mutable_policy()->set_scope("api:orders");
  policy.mutable_policy()->set_xml(
      R"(<policies><inbound><rate-limit calls="1" renewal-period="60"/></inbound></policies>)");
  v1::Policy made;
  ASSERT_TRUE(stub_->CreatePolicy(AuthorizedContext().get(), policy, &made).ok());
  v1::Subscription a = Subscribe("a", "all", 1);
  v1::Subscription b = Subscribe("b", "all", 1);
  auto worker = Worker();
  // "other" has no rate limit, and both subscriptions (scope "all") cover it.
  WorkerHealth health(*worker, "/other/json", KeyHeader(b.primary_key()));
  EXPECT_EQ(Get(*worker, "/orders/json", a.primary_key()), 200);
  EXPECT_EQ(Get(*worker, "/orders/json", a.primary_key()), 429);
  EXPECT_EQ(Get(*worker, "/orders/json", b.primary_key()), 200) << "b has its own count";

  RawConnection stream(worker->port());
  stream.Send(
      "GET /feed/events?interval_ms=100 HTTP/1.1\r\nHost: x\r\nOcp-Apim-Subscription-Key: " +
      a.primary_key() + "\r\n\r\n");
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1,", 5s));
  auto second = HttpRequest(worker->port(), "GET", "/feed/events",
                            "Ocp-Apim-Subscription-Key: " + a.primary_key() + "\r\n");
  EXPECT_EQ(second.status, 429);
  EXPECT_THAT(second.body, HasSubstr("too-many-subscription-streams"));
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/feed/events?count=1&interval_ms=1",
                        "Ocp-Apim-Subscription-Key: " + b.primary_key() + "\r\n")
                .status,
            200);
  stream.Close();
  health.ExpectRecovered();
}

}  // namespace
}  // namespace apim
