// Policies, caching and diagnostics in a real worker, and the rule that none of them ever holds,
// replays or logs the body of an event stream.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"
#include "tests/support/scripted_backend.h"
#include "tests/support/worker_health.h"

namespace apim {
namespace {

using apim::testing::ApiJson;
using apim::testing::BackendProcess;
using apim::testing::GatewayProcess;
using apim::testing::HeaderValue;
using apim::testing::HttpRequest;
using apim::testing::LoopbackListener;
using apim::testing::PolicyJson;
using apim::testing::SnapshotJsonWithTier;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using apim::testing::WorkerHealth;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kStandard[] =
    R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
    R"("heartbeatIntervalSeconds":30})";

class GatewayPolicyTest : public ::testing::Test {
 protected:
  GatewayProcess Start(const std::vector<std::string>& apis, const std::string& extra) {
    return GatewayProcess(dir_.path(), SnapshotJsonWithTier(kStandard, apis, extra));
  }
  TempDir dir_;
  BackendProcess backend_{dir_.path()};
};

TEST_F(GatewayPolicyTest, SetHeaderAndCheckHeaderShapeTheRequestWithBaseInheritance) {
  const std::string global = R"(<policies><inbound>
      <set-header name="X-From-Global" exists-action="override"><value>g</value></set-header>
    </inbound></policies>)";
  const std::string orders = R"(<policies><inbound><base/>
      <check-header name="X-Key" failed-check-httpcode="401" failed-check-error-message="key please">
        <value>secret</value></check-header>
      <set-header name="X-Api" exists-action="override"><value>orders</value></set-header>
    </inbound><outbound>
      <set-header name="X-Served-By" exists-action="override"><value>apim</value></set-header>
    </outbound></policies>)";
  const std::string plain = R"(<policies><inbound>
      <set-header name="X-Plain" exists-action="override"><value>p</value></set-header>
    </inbound></policies>)";  // No <base/>: the global inbound does not apply.
  auto gateway =
      Start({ApiJson("orders", backend_.port()), ApiJson("plain", backend_.port())},
            R"("policies":[)" + PolicyJson("global", global) + "," +
                PolicyJson("api:orders", orders) + "," + PolicyJson("api:plain", plain) + "]");
  WorkerHealth health(gateway, "/plain/echo");
  auto refused = HttpRequest(gateway.port(), "GET", "/orders/echo");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.body, HasSubstr("key please"));
  health.ExpectRecovered();
  // Every occurrence of a checked header must pass: a repeat cannot slip another value through.
  auto repeated =
      HttpRequest(gateway.port(), "GET", "/orders/echo", "X-Key: secret\r\nX-Key: root\r\n");
  EXPECT_EQ(repeated.status, 401) << repeated.body;
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/echo", "X-Key: secret\r\nX-Key: secret\r\n")
                .status,
            200);
  health.ExpectRecovered();
  auto echo = HttpRequest(gateway.port(), "GET", "/orders/echo",
                          "X-Key: secret\r\nForwarded: for=10.9.9.9\r\nX-Real-IP: 10.9.9.9\r\n");
  EXPECT_EQ(echo.status, 200);
  EXPECT_THAT(echo.body, HasSubstr("\"x-from-global\":\"g\""));
  EXPECT_THAT(echo.body, HasSubstr("\"x-api\":\"orders\""));
  EXPECT_THAT(echo.body, Not(HasSubstr("10.9.9.9"))) << "a client's Forwarded or X-Real-IP";
  EXPECT_EQ(HeaderValue(echo.head, "x-served-by"), "apim");
  auto plain_echo = HttpRequest(gateway.port(), "GET", "/plain/echo");
  EXPECT_THAT(plain_echo.body, HasSubstr("\"x-plain\":\"p\""));
  EXPECT_THAT(plain_echo.body, Not(HasSubstr("x-from-global")));
}

TEST_F(GatewayPolicyTest, RateLimitAnswers429WithRetryAfter) {
  const std::string limited = R"(<policies><inbound>
      <rate-limit calls="2" renewal-period="60"/></inbound></policies>)";
  auto gateway = Start({ApiJson("orders", backend_.port()), ApiJson("plain", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:orders", limited) + "]");
  WorkerHealth health(gateway, "/plain/json");
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json").status, 200);
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json").status, 200);
  auto third = HttpRequest(gateway.port(), "GET", "/orders/json");
  EXPECT_EQ(third.status, 429);
  EXPECT_FALSE(HeaderValue(third.head, "retry-after").empty());
  health.ExpectRecovered();
}

TEST_F(GatewayPolicyTest, RateLimitByKeyCountsEachKeyApart) {
  const std::string limited = R"xml(<policies><inbound>
      <rate-limit-by-key calls="1" renewal-period="60"
        counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tenant&quot;,&quot;&quot;))"/>
    </inbound></policies>)xml";
  auto gateway = Start({ApiJson("orders", backend_.port()), ApiJson("plain", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:orders", limited) + "]");
  WorkerHealth health(gateway, "/plain/json");
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json", "X-Tenant: a\r\n").status, 200);
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json", "X-Tenant: a\r\n").status, 429);
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json", "X-Tenant: b\r\n").status, 200);
  health.ExpectRecovered();
}

TEST_F(GatewayPolicyTest, QuotaByKeyAnswers403OnceAKeysBandwidthIsSpent) {
  const std::string limited = R"xml(<policies><inbound>
      <quota-by-key calls="100" bandwidth="8" renewal-period="3600"
        counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Tenant&quot;,&quot;&quot;))"/>
    </inbound></policies>)xml";
  auto gateway = Start({ApiJson("orders", backend_.port()), ApiJson("plain", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:orders", limited) + "]");
  WorkerHealth health(gateway, "/plain/json");
  // 8 KiB a period for each tenant: two responses of 5000 bytes spend it (each counts when it
  // has ended, so the refusal is awaited).
  const auto tenant_a = [&] {
    return HttpRequest(gateway.port(), "GET", "/orders/json?size=5000", "X-Tenant: a\r\n");
  };
  EXPECT_EQ(tenant_a().status, 200);
  EXPECT_EQ(tenant_a().status, 200);
  apim::testing::SimpleResponse refused;
  ASSERT_TRUE(apim::testing::PollUntil([&] { return (refused = tenant_a()).status == 403; }, 10s));
  EXPECT_THAT(refused.body, HasSubstr("quota-exceeded"));
  EXPECT_GE(std::stoi(HeaderValue(refused.head, "retry-after")), 3500);
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/orders/json", "X-Tenant: b\r\n").status, 200);
  health.ExpectRecovered();
}

TEST_F(GatewayPolicyTest, ReturnResponseAnswersWithoutTheBackend) {
  const std::string mock = R"(<policies><inbound><return-response>
      <set-status code="418" reason="Teapot"/>
      <set-header name="X-Mock" exists-action="override"><value>yes</value></set-header>
      <set-body>short and stout</set-body></return-response></inbound></policies>)";
  auto gateway = Start({ApiJson("orders", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:orders", mock) + "]");
  auto response = HttpRequest(gateway.port(), "GET", "/orders/anything");
  EXPECT_EQ(response.status, 418);
  EXPECT_EQ(HeaderValue(response.head, "x-mock"), "yes");
  EXPECT_EQ(response.body, "short and stout");
}

TEST_F(GatewayPolicyTest, ForwardRequestTimeoutOverridesTheApi) {
  // A listener that never accepts: the backend's response head never comes.
  LoopbackListener silent(16);
  const std::string fast =
      R"(<policies><backend><forward-request timeout-ms="300"/></backend></policies>)";
  auto gateway = Start({ApiJson("slow", silent.port()), ApiJson("orders", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:slow", fast) + "]");
  WorkerHealth health(gateway, "/orders/json");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/slow/x").status, 504);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "not the API's default 300 s";
  health.ExpectRecovered();
}

TEST_F(GatewayPolicyTest, ValidateContentRefusesTooLargeBodies) {
  const std::string validate = R"(<policies><inbound>
      <validate-content unspecified-content-type-action="prevent" max-size="10"
                        size-exceeded-action="prevent"/></inbound></policies>)";
  auto gateway = Start({ApiJson("orders", backend_.port())},
                       R"("policies":[)" + PolicyJson("api:orders", validate) + "]");
  WorkerHealth health(gateway, "/orders/json");  // A GET has no body to validate.
  apim::testing::RawConnection big(gateway.port());
  big.Send(
      "POST /orders/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
      "Connection: close\r\n\r\n01234567890123456789");
  ASSERT_TRUE(big.WaitForClose(5s));
  EXPECT_THAT(big.received(), HasSubstr("413"));
  apim::testing::RawConnection small(gateway.port());
  small.Send(
      "POST /orders/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
      "Connection: close\r\n\r\nhello");
  ASSERT_TRUE(small.WaitForClose(5s));
  EXPECT_THAT(small.received(), HasSubstr("\"body_bytes\":5"));
  health.ExpectRecovered();
}

TEST_F(GatewayPolicyTest, CachedResponsesHitMissAndExpireAndStreamsAreNeverCached) {
  const std::string cache = R"(<policies><inbound><base/><cache-lookup>
      <vary-by-query-parameter>size</vary-by-query-parameter></cache-lookup></inbound>
      <outbound><base/><cache-store duration="1"/></outbound></policies>)";
  auto gateway = Start(
      {ApiJson("orders", backend_.port()), ApiJson("feed", backend_.port(), R"(,"sse":true)")},
      R"("caches":[{"scope":"global","enabled":true}],"policies":[)" + PolicyJson("global", cache) +
          "]");
  auto first = HttpRequest(gateway.port(), "GET", "/orders/json?size=100");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(HeaderValue(first.head, "x-cache"), "");
  auto second = HttpRequest(gateway.port(), "GET", "/orders/json?size=100");
  EXPECT_EQ(HeaderValue(second.head, "x-cache"), "HIT");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(
      HeaderValue(HttpRequest(gateway.port(), "GET", "/orders/json?size=200").head, "x-cache"), "")
      << "a different size is a different key";
  // After the 1 s duration the entry is gone. (Expiry is time-based by definition.)
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(
      HeaderValue(HttpRequest(gateway.port(), "GET", "/orders/json?size=100").head, "x-cache"), "");
  // The SSE API under the same global policy: every request reaches the backend afresh.
  auto stream1 = HttpRequest(gateway.port(), "GET", "/feed/events?count=1&interval_ms=1");
  auto stream2 = HttpRequest(gateway.port(), "GET", "/feed/events?count=1&interval_ms=1");
  EXPECT_EQ(HeaderValue(stream2.head, "x-cache"), "");
  EXPECT_NE(stream1.body, stream2.body) << "each stream carries its own timestamps";
}

TEST_F(GatewayPolicyTest, GlobalBodyLoggingLogsOrdinaryBodiesButNeverAnEventStream) {
  auto gateway = Start(
      {ApiJson("orders", backend_.port()), ApiJson("feed", backend_.port(), R"(,"sse":true)")},
      R"("diagnostics":[{"scope":"global","requestBodyBytes":64,"responseBodyBytes":64,)"
      R"("headers":["X-Trace"]}])");
  HttpRequest(gateway.port(), "GET", "/orders/json?size=10", "X-Trace: t1\r\n");
  HttpRequest(gateway.port(), "GET", "/feed/events?count=2&interval_ms=1", "X-Trace: t2\r\n");
  ASSERT_TRUE(WaitForFileContent(gateway.process().stdout_path(), "\"events\":2", 5s));
  const std::string log = gateway.process().Stdout();
  EXPECT_THAT(log, HasSubstr("\"response_body\":\"{"));
  EXPECT_THAT(log, HasSubstr("\"X-Trace\":\"t1\"")) << log;
  EXPECT_THAT(log, Not(HasSubstr("ts_ns"))) << "an event stream's body is never logged";
  EXPECT_THAT(log, Not(HasSubstr("\"client_ip\""))) << "log_client_ip defaults to false";
}

}  // namespace
}  // namespace apim
