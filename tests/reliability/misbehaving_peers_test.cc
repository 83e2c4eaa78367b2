// Backends and clients that break the protocol, against a real worker on loopback: a backend that
// fails before its response head, answers a HEAD with a body or switches protocols unasked, or
// ends an event stream by closing; a client that hides dot segments behind percent-encoding,
// names policy headers in Connection, sends a subscription key twice, floods the rate limiter
// with keys, holds large buffered bodies, talks in the middle of a stream, or sends a byte
// outside ASCII. Each test pins behaviour the worker once lacked (a crash, a leak, a silent end),
// and after an error path checks that the worker recovered.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/sha256.h"
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
using apim::testing::kResidentMemoryIsOwn;
using apim::testing::Metric;
using apim::testing::PolicyJson;
using apim::testing::PollUntil;
using apim::testing::RawConnection;
using apim::testing::ResidentKib;
using apim::testing::ScriptedBackend;
using apim::testing::SimpleResponse;
using apim::testing::SnapshotJsonWithTier;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using apim::testing::WorkerHealth;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Action = ScriptedBackend::Action;
using namespace std::chrono_literals;

constexpr char kStandard[] =
    R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
    R"("heartbeatIntervalSeconds":30})";
// An ordinary request every worker here serves with 200 (the recovery check's).
constexpr char kOrdinary[] = "/orders/json?size=8";
constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

void ExpectProblem(const SimpleResponse& response, int status) {
  EXPECT_EQ(response.status, status) << response.head << response.body;
  EXPECT_EQ(HeaderValue(response.head, "content-type"), "application/problem+json");
  EXPECT_THAT(response.body, HasSubstr("\"status\":" + std::to_string(status)));
}

// The status of the first response in raw bytes, or 0.
int StatusOf(const std::string& raw) {
  return raw.starts_with("HTTP/1.1 ") && raw.size() >= 12 ? std::stoi(raw.substr(9, 3)) : 0;
}

class MisbehavingPeersTest : public ::testing::Test {
 protected:
  // A worker serving `apis` and, on the sse-test-backend, "orders" (ordinary) and "feed" (SSE);
  // `extra_fields` are added to the snapshot (policies, subscriptions).
  std::unique_ptr<GatewayProcess> StartGateway(std::vector<std::string> apis,
                                               const std::string& extra_fields = "",
                                               std::vector<std::string> flags = {}) {
    apis.push_back(ApiJson("orders", backend_.port(), "", "/base"));
    apis.push_back(ApiJson("feed", backend_.port(), R"(,"sse":true)", "/base"));
    return std::make_unique<GatewayProcess>(
        dir_.path(), SnapshotJsonWithTier(kStandard, apis, extra_fields), std::move(flags));
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
};

// ---------------------------------------------------------------------------------------------
// Backends that fail before their response head.

Action BrokenBackendAnswer(const std::string& request) {
  const auto asks_for = [&](const char* path) {
    return request.starts_with(std::string("GET /base/") + path + " ");
  };
  if (asks_for("no-answer")) return Action::Close();
  if (asks_for("two-lengths")) {
    return Action::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
  }
  if (asks_for("length-and-chunked")) {
    return Action::Send(
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n");
  }
  if (asks_for("bare-cr")) {
    return Action::Send("HTTP/1.1 200 OK\r\nX-Note: a\rb\r\nContent-Length: 2\r\n\r\nok");
  }
  return Action::Silent();
}

TEST_F(MisbehavingPeersTest,
       ABackendFailingBeforeItsHeadGetsAProblemAndTheWorkerAndStreamsCarryOn) {
  ScriptedBackend broken(BrokenBackendAnswer);
  auto gateway = StartGateway({ApiJson("broken", broken.port(), "", "/base"),
                               ApiJson("slow", broken.port(), R"(,"timeoutSeconds":1)", "/base")});
  RawConnection stream(gateway->port());
  stream.Send("GET /feed/events?interval_ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1,", 5s)) << stream.received();
  WorkerHealth health(*gateway, kOrdinary);

  const std::vector<std::pair<std::string, int>> cases = {
      {"/broken/no-answer", 502}, {"/broken/two-lengths", 502}, {"/broken/length-and-chunked", 502},
      {"/broken/bare-cr", 502},   {"/slow/silent", 504},
  };
  for (const auto& [target, status] : cases) {
    SCOPED_TRACE(target);
    const size_t before = broken.requests().size();
    ExpectProblem(HttpRequest(gateway->port(), "GET", target, "", 5s), status);
    const auto requests = broken.requests();
    ASSERT_EQ(requests.size(), before + 1) << "the request never reached the backend";
    EXPECT_TRUE(broken.AwaitClosedByGateway(requests.back().connection, 2s))
        << "the gateway kept a backend connection that failed";
    ASSERT_TRUE(health.ExpectRecovered());
  }
  // The stream opened before all this still flows: an event the backend sends from now on (it
  // has sent events on this stream only) reaches the client.
  const uint64_t next = backend_.Stats().events_sent + 1;
  EXPECT_TRUE(stream.ReadUntil("\"seq\":" + std::to_string(next) + ",", 5s))
      << "the stream stopped before event " << next;
}

// ---------------------------------------------------------------------------------------------
// Request targets.

TEST_F(MisbehavingPeersTest, EncodedDotSegmentsAreRefusedBeforeReachingTheBackend) {
  ScriptedBackend api(Action::Send(kOk));
  auto gateway = StartGateway({ApiJson("api", api.port(), "", "/base")});
  WorkerHealth health(*gateway, kOrdinary);
  for (const char* target :
       {"/api/..%2fsecret.txt", "/api/%2e%2e%2fsecret.txt", "/api/.%2e%2fsecret.txt",
        "/api/..%5csecret.txt", "/api/%2E%2E%2Fsecret.txt", "/api/..#x"}) {
    SCOPED_TRACE(target);
    ExpectProblem(HttpRequest(gateway->port(), "GET", target), 400);
    const auto requests = api.requests();
    EXPECT_TRUE(requests.empty()) << "the backend received:\n" << requests.back().bytes;
    if (!health.ExpectRecovered()) break;
  }
}

TEST_F(MisbehavingPeersTest, EncodedSlashesAreForwardedUnchangedAndFragmentsNever) {
  ScriptedBackend api(Action::Send(kOk));
  auto gateway = StartGateway({ApiJson("api", api.port(), "", "/base")});
  EXPECT_EQ(HttpRequest(gateway->port(), "GET", "/api/repos/a%2Fb").status, 200);
  EXPECT_EQ(HttpRequest(gateway->port(), "GET", "/api/x#frag").status, 200);
  const auto requests = api.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0].bytes, StartsWith("GET /base/repos/a%2Fb HTTP/1.1\r\n"));
  EXPECT_THAT(requests[1].bytes, StartsWith("GET /base/x HTTP/1.1\r\n"));
}

// ---------------------------------------------------------------------------------------------
// rate-limit-by-key with keys the client chooses.

// Counts by X-Key, which the backend does not need (nor take, at 16 KiB).
std::string KeyedRateLimit() {
  return R"("policies":[)" + PolicyJson("api:limited", R"xml(<policies><inbound>
           <rate-limit-by-key calls="3" renewal-period="60"
             counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Key&quot;,&quot;&quot;))" />
           <set-header name="X-Key" exists-action="delete" />
         </inbound></policies>)xml") +
         "]";
}

TEST_F(MisbehavingPeersTest, AFullKeyTableSharesAnOverflowWindowAndNeverResetsALiveKey) {
  auto gateway = StartGateway({ApiJson("limited", backend_.port(), "", "/base")}, KeyedRateLimit(),
                              {"--rate-limit-max-keys", "50"});
  WorkerHealth health(*gateway, kOrdinary);
  const auto call = [&](const std::string& key) {
    return HttpRequest(gateway->port(), "GET", "/limited/json?size=8", "X-Key: " + key + "\r\n")
        .status;
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(call("live"), 200);
  EXPECT_EQ(call("live"), 429);
  int allowed = 0, refused = 0, allowed_after_a_refusal = 0;
  for (int i = 0; i < 200; ++i) {
    const int status = call("key-" + std::to_string(i));
    if (status == 200) {
      ++allowed;
      if (refused > 0) ++allowed_after_a_refusal;
    } else if (status == 429) {
      ++refused;
    }
  }
  // 49 keys fit beside "live"; the ones after them share one window of 3 calls.
  EXPECT_GE(allowed, 45);
  EXPECT_LE(allowed, 56);
  EXPECT_EQ(allowed + refused, 200);
  EXPECT_EQ(allowed_after_a_refusal, 0) << "the overflow window let more calls through";
  EXPECT_EQ(call("live"), 429) << "making room reset a live key's count";
  EXPECT_GT(Metric(*gateway, "apim_rate_limit_overflow_total"), 0);
  health.ExpectRecovered();
}

TEST_F(MisbehavingPeersTest, LongRateLimitKeysCostTheWorkerLittleMemory) {
  auto gateway = StartGateway({ApiJson("limited", backend_.port(), "", "/base")}, KeyedRateLimit());
  const auto call = [&](int i) {
    const std::string key = std::to_string(i) + "-" + std::string(16 * 1024, 'k');
    return HttpRequest(gateway->port(), "GET", "/limited/json?size=8", "X-Key: " + key + "\r\n")
        .status;
  };
  // Warm-up: the worker's pools, arenas and the table's first buckets exist before the baseline.
  for (int i = 0; i < 300; ++i) ASSERT_EQ(call(i), 200);
  const pid_t pid = gateway->process().pid();
  const uint64_t before = ResidentKib(pid);
  int allowed = 0;
  for (int i = 300; i < 2300; ++i) allowed += call(i) == 200;
  EXPECT_EQ(allowed, 2000) << "every new key has its own window";
  const uint64_t after = ResidentKib(pid);
  if (!kResidentMemoryIsOwn) {
    GTEST_SKIP() << "resident memory is not the worker's own under AddressSanitizer";
  }
  EXPECT_LT(after, before + 8 * 1024)
      << "2000 keys of 16 KiB grew the worker from " << before << " KiB to " << after << " KiB";
  RecordProperty("resident_kib", std::to_string(before) + " -> " + std::to_string(after));
}

// ---------------------------------------------------------------------------------------------
// Subscription keys, given in ways a careless client might.

TEST_F(MisbehavingPeersTest, ASubscriptionKeyInTheQueryReachesNeitherTheBackendNorTheLog) {
  const std::string key = "good-key-3a7c51e0b9d24f68";
  const std::string stray = "stray-key-c0ffee11d00d2e";
  const std::string wrong = "wrong-key-5b1d9e77a4c3f0";
  auto gateway =
      StartGateway({ApiJson("keyed", backend_.port(), R"(,"subscriptionRequired":true)", "/base")},
                   R"("subscriptions":[{"name":"acme","apis":["keyed"],"keySha256":[")" +
                       Sha256Hex(key) + R"("]}])");
  WorkerHealth health(*gateway, kOrdinary);

  const auto echo = [&](const std::string& query, const std::string& headers) {
    const SimpleResponse response =
        HttpRequest(gateway->port(), "GET", "/keyed/echo?" + query, headers);
    EXPECT_EQ(response.status, 200) << response.body;
    EXPECT_THAT(response.body, HasSubstr("\"target\":\"/base/echo?a=1\""));
    for (const std::string& secret : {key, stray, std::string("subscription-key")}) {
      EXPECT_THAT(response.body, Not(HasSubstr(secret))) << "forwarded to the backend";
    }
  };
  {
    SCOPED_TRACE("a key in the header and another in the query");
    echo("a=1&subscription-key=" + stray, "Ocp-Apim-Subscription-Key: " + key + "\r\n");
  }
  {
    SCOPED_TRACE("the query parameter twice");
    echo("subscription-key=" + key + "&a=1&subscription-key=" + stray, "");
  }
  {
    SCOPED_TRACE("a wrong key in the query");
    ExpectProblem(HttpRequest(gateway->port(), "GET", "/keyed/echo?subscription-key=" + wrong),
                  401);
  }
  ASSERT_EQ(HttpRequest(gateway->port(), "GET", "/orders/json?size=1&marker=end").status, 200);
  ASSERT_TRUE(WaitForFileContent(gateway->process().stdout_path(), "marker=end", 5s));
  const std::string log = gateway->process().Stdout() + gateway->process().Stderr();
  for (const std::string& secret : {key, stray, wrong}) {
    EXPECT_THAT(log, Not(HasSubstr(secret))) << "a query key was logged";
  }
  health.ExpectRecovered();
}

// ---------------------------------------------------------------------------------------------
// Hop-by-hop headers.

TEST_F(MisbehavingPeersTest, HeadersNamedInConnectionCannotRemoveAHeaderThePolicySets) {
  const std::string secret = PolicyJson("api:guarded", R"(<policies><inbound>
      <set-header name="X-Gateway-Secret" exists-action="override"><value>s3cret</value></set-header>
    </inbound></policies>)");
  auto gateway = StartGateway({ApiJson("guarded", backend_.port(), "", "/base")},
                              R"("policies":[)" + secret + "]");
  for (const char* connection : {"close, X-Gateway-Secret", "keep-alive, x-gateway-secret"}) {
    SCOPED_TRACE(connection);
    RawConnection client(gateway->port());
    client.Send(std::string("GET /guarded/echo HTTP/1.1\r\nHost: x\r\nConnection: ") + connection +
                "\r\nX-Gateway-Secret: forged\r\n\r\n");
    ASSERT_TRUE(client.ReadUntil("\"body_bytes\":", 5s)) << client.received();
    EXPECT_THAT(client.received(), HasSubstr("\"x-gateway-secret\":\"s3cret\""));
    EXPECT_THAT(client.received(), Not(HasSubstr("forged")));
  }
}

// ---------------------------------------------------------------------------------------------
// Buffered bodies: one worker-wide budget.

TEST_F(MisbehavingPeersTest, ClientsThatNeverReadLargeBufferedResponsesCannotTakeTheWorkersMemory) {
  auto gateway = StartGateway({}, "", {"--buffer-budget-bytes", "20000000"});
  constexpr size_t kBody = 15'000'000;
  const std::string expected =
      HttpRequest(backend_.port(), "GET", "/base/json?size=" + std::to_string(kBody), "", 30s).body;
  ASSERT_EQ(expected.size(), kBody);
  ASSERT_EQ(HttpRequest(gateway->port(), "GET", kOrdinary).status, 200);
  const pid_t pid = gateway->process().pid();
  const uint64_t baseline = ResidentKib(pid);

  std::vector<std::unique_ptr<RawConnection>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<RawConnection>(gateway->port()));
    clients.back()->Send("GET /orders/json?size=" + std::to_string(kBody) +
                         " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }
  // A head arrives once the worker has buffered that body whole, or has started to stream it:
  // with every head here, the worker holds all it will hold for clients that do not read.
  for (auto& client : clients) ASSERT_TRUE(client->ReadUntil("\r\n\r\n", 30s));
  const uint64_t holding = ResidentKib(pid);
  if (kResidentMemoryIsOwn) {
    EXPECT_LT(holding, baseline + 60 * 1024)
        << "six unread 15 MB responses took the worker from " << baseline << " KiB to " << holding;
  }
  RecordProperty("resident_kib", std::to_string(baseline) + " -> " + std::to_string(holding));

  for (size_t i = 0; i < clients.size(); ++i) {
    SCOPED_TRACE("client " + std::to_string(i));
    ASSERT_TRUE(clients[i]->WaitForClose(30s));
    const std::string& raw = clients[i]->received();
    const size_t head_end = raw.find("\r\n\r\n");
    EXPECT_EQ(StatusOf(raw), 200);
    const std::string head = raw.substr(0, head_end + 2);
    const std::string body = HeaderValue(head, "transfer-encoding") == "chunked"
                                 ? apim::testing::Dechunk(raw.substr(head_end + 4))
                                 : raw.substr(head_end + 4);
    EXPECT_EQ(body.size(), kBody);
    EXPECT_TRUE(body == expected) << "the body differs from the backend's";
  }
}

// An API whose policy buffers request bodies.
std::string BufferedUploads() {
  return R"("policies":[)" +
         PolicyJson("api:upload",
                    R"(<policies><backend><forward-request buffer-request-body="true"/>)"
                    R"(</backend></policies>)") +
         "]";
}

// Posts `size` bytes to /upload/echo on a fresh connection; the status of the answer (0 if none).
int Upload(uint16_t port, size_t size) {
  RawConnection client(port);
  try {
    client.Send("POST /upload/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                std::to_string(size) + "\r\n\r\n" + std::string(size, 'u'));
  } catch (const std::runtime_error&) {
    // Refused before the whole body was sent: the answer is read below.
  }
  client.WaitForClose(10s);
  return StatusOf(client.received());
}

TEST_F(MisbehavingPeersTest, ABufferedUploadOverTheLimitIs413BeforeItsBodyIsSent) {
  auto gateway = StartGateway({ApiJson("upload", backend_.port(), "", "/base")}, BufferedUploads(),
                              {"--max-buffered-body-bytes", "1000000"});
  WorkerHealth health(*gateway, kOrdinary);
  RawConnection client(gateway->port());
  client.Send("POST /upload/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  const auto answer = client.ReadUntil("\r\n\r\n", 5s);
  ASSERT_TRUE(answer) << "no answer before the body: " << client.received();
  EXPECT_THAT(*answer, StartsWith("HTTP/1.1 413"));
  EXPECT_THAT(*answer, HasSubstr("application/problem+json"));
  client.Close();
  EXPECT_EQ(Upload(gateway->port(), 500'000), 200) << "an upload under the limit";
  health.ExpectRecovered();
}

TEST_F(MisbehavingPeersTest, SlowBufferedUploadsExhaustTheBudgetAndAFurtherOneIs503) {
  auto gateway =
      StartGateway({ApiJson("upload", backend_.port(), "", "/base")}, BufferedUploads(),
                   {"--buffer-budget-bytes", "2000000", "--max-buffered-body-bytes", "1000000"});
  WorkerHealth health(*gateway, kOrdinary);
  // Six uploads of 900 KB stop halfway: their halves alone are more than the budget.
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 6; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(gateway->port()));
    try {
      stalled.back()->Send(
          "POST /upload/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n" +
          std::string(450'000, 's'));
    } catch (const std::runtime_error&) {
      // Refused already (the budget is spent): it holds nothing.
    }
  }
  // Awaited, not assumed: a further upload that the worker took in before some of the stalled
  // ones would be served, and have those refused instead. Two stalled uploads fit the budget.
  EXPECT_TRUE(PollUntil([&] { return Metric(*gateway, "apim_buffered_bytes") == 1'800'000; }))
      << "buffered bytes " << Metric(*gateway, "apim_buffered_bytes");
  EXPECT_EQ(Upload(gateway->port(), 500'000), 503);
  EXPECT_GT(Metric(*gateway, "apim_buffer_budget_exhausted_total"), 0);
  stalled.clear();
  // Once the stalled uploads are gone, their share of the budget is free again.
  int status = 0;
  EXPECT_TRUE(PollUntil([&] { return (status = Upload(gateway->port(), 500'000)) == 200; }))
      << "last status " << status;
  health.ExpectRecovered();
}

// ---------------------------------------------------------------------------------------------
// Clients that talk while a stream is relayed.

TEST_F(MisbehavingPeersTest, AByteFromTheClientMidStreamStillLetsTheGatewayNoticeItLeave) {
  auto gateway = StartGateway({});
  WorkerHealth health(*gateway, kOrdinary);
  const uint64_t closed_before = backend_.Stats().streams_closed_by_client;
  RawConnection client(gateway->port());
  // Two events, then silence: only watching the client can tell the gateway it left.
  client.Send("GET /feed/events?interval_ms=200&idle_after=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\"seq\":1,", 5s)) << client.received();
  client.Send("x");
  ASSERT_TRUE(client.ReadUntil("\"seq\":2,", 5s)) << client.received();
  client.Close();
  EXPECT_EQ(backend_.Stats(closed_before + 1, 2s).streams_closed_by_client, closed_before + 1)
      << "the backend stream outlived its client";
  EXPECT_TRUE(PollUntil([&] { return Metric(*gateway, "apim_active_streams") == 0; }));
  health.ExpectRecovered();
}

TEST_F(MisbehavingPeersTest, AClientSendingJunkMidStreamIsDisconnectedAndItsBackendStreamClosed) {
  auto gateway = StartGateway({});
  WorkerHealth health(*gateway, kOrdinary);
  const uint64_t closed_before = backend_.Stats().streams_closed_by_client;
  RawConnection client(gateway->port());
  client.Send("GET /feed/events?interval_ms=200 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\"seq\":1,", 5s)) << client.received();
  try {
    client.Send(std::string(64 * 1024, 'j'));
  } catch (const std::runtime_error&) {
    // Already disconnected.
  }
  EXPECT_TRUE(client.WaitForClose(5s)) << "the gateway kept relaying to a client flooding it";
  EXPECT_EQ(backend_.Stats(closed_before + 1, 2s).streams_closed_by_client, closed_before + 1);
  EXPECT_TRUE(PollUntil([&] { return Metric(*gateway, "apim_active_streams") == 0; }));
  health.ExpectRecovered();
}

// ---------------------------------------------------------------------------------------------
// Every session ends with an answer.

TEST_F(MisbehavingPeersTest, AByteOutsideAsciiInThePathIsAnswered400AndLogged) {
  auto gateway = StartGateway({});
  WorkerHealth health(*gateway, kOrdinary);
  for (int i = 0; i < 20; ++i) {
    RawConnection client(gateway->port());
    client.Send("GET /nothing\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(client.WaitForClose(5s));
    ASSERT_EQ(StatusOf(client.received()), 400) << client.received();
    EXPECT_THAT(client.received(), HasSubstr("application/problem+json"));
  }
  const auto logged = [&] {
    const std::string log = gateway->process().Stdout();
    size_t lines = 0;
    for (size_t at = log.find("\"status\":400"); at != std::string::npos;
         at = log.find("\"status\":400", at + 1)) {
      ++lines;
    }
    return lines;
  };
  EXPECT_TRUE(PollUntil([&] { return logged() >= 20; })) << logged() << " access log lines";
  health.ExpectRecovered();
}

TEST_F(MisbehavingPeersTest, PolicyAnswersWithA204Or304CarryNoBody) {
  const std::string policies = R"("policies":[)" + PolicyJson("api:checked", R"(<policies><inbound>
        <check-header name="X-Key" failed-check-httpcode="204" failed-check-error-message="no">
          <value>secret</value></check-header></inbound></policies>)") +
                               "," +
                               PolicyJson("api:cached", R"(<policies><inbound><return-response>
        <set-status code="304" reason="Not Modified"/><set-body>stale</set-body>
      </return-response></inbound></policies>)") +
                               "]";
  auto gateway = StartGateway({ApiJson("checked", backend_.port(), "", "/base"),
                               ApiJson("cached", backend_.port(), "", "/base")},
                              policies);
  WorkerHealth health(*gateway, kOrdinary);
  for (const auto& [target, status] : {std::pair{"/checked/json", 204}, {"/cached/json", 304}}) {
    SCOPED_TRACE(target);
    // On a keep-alive connection, a body after the head would be read as the next response.
    RawConnection client(gateway->port());
    client.Send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(client.ReadUntil("\r\n\r\n", 5s)) << client.received();
    client.Send("GET /orders/json?size=8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    client.WaitForClose(5s);
    const std::string& raw = client.received();
    EXPECT_EQ(StatusOf(raw), status) << raw;
    const size_t head_end = raw.find("\r\n\r\n") + 4;
    EXPECT_THAT(HeaderValue(raw.substr(0, head_end - 2), "content-length"),
                ::testing::AnyOf("", "0"));
    // Either the next response follows the head at once, or the connection ended after it.
    EXPECT_THAT(raw.substr(head_end), ::testing::AnyOf("", StartsWith("HTTP/1.1 200")))
        << "bytes after a " << status << " head";
    EXPECT_TRUE(health.ExpectRecovered());
  }
}

// ---------------------------------------------------------------------------------------------
// Backends that answer what was not asked.

TEST_F(MisbehavingPeersTest, ABackendConnectionThatAnsweredAHeadWithABodyIsNotReused) {
  ScriptedBackend api(Action::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  auto gateway = StartGateway({ApiJson("api", api.port(), "", "/base")});
  WorkerHealth health(*gateway, kOrdinary);
  RawConnection client(gateway->port());
  client.Send("HEAD /api/x HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\r\n\r\n", 5s)) << client.received();
  EXPECT_EQ(StatusOf(client.received()), 200);
  // A GET on the same client connection is served by the same thread, and so from the same
  // backend pool, as the HEAD; then one on a new connection.
  client.Send("GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(client.WaitForClose(5s));
  const std::string& raw = client.received();
  EXPECT_THAT(raw.substr(raw.find("\r\n\r\n") + 4), StartsWith("HTTP/1.1 200"))
      << "the HEAD's answer carried a body: " << raw;
  EXPECT_THAT(raw, EndsWith("\r\n\r\nhello"));
  const SimpleResponse fresh = HttpRequest(gateway->port(), "GET", "/api/x");
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.body, "hello");

  const auto requests = api.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_THAT(requests[0].bytes, StartsWith("HEAD /base/x HTTP/1.1\r\n"));
  for (size_t i = 1; i < requests.size(); ++i) {
    EXPECT_NE(requests[i].connection, requests[0].connection)
        << "a GET was sent on the connection that answered the HEAD with a body";
  }
  EXPECT_TRUE(api.AwaitClosedByGateway(requests[0].connection, 2s));
  health.ExpectRecovered();
}

TEST_F(MisbehavingPeersTest, ABackendSwitchingProtocolsOnAPlainGetIs502) {
  ScriptedBackend api(Action::Send(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
  auto gateway = StartGateway({ApiJson("api", api.port(), "", "/base")});
  WorkerHealth health(*gateway, kOrdinary);
  ExpectProblem(HttpRequest(gateway->port(), "GET", "/api/x", "", 5s), 502);
  EXPECT_TRUE(api.AwaitClosedByGateway(0, 2s)) << "the switched connection was kept";
  health.ExpectRecovered();
}

// A close-delimited event stream ends cleanly only after a complete event: otherwise the client
// must see a cut (no chunked terminator), so that EventSource reconnects with Last-Event-ID.
TEST_F(MisbehavingPeersTest, ACloseDelimitedStreamEndsCleanlyOnlyAfterACompleteEvent) {
  constexpr char kHead[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
  ScriptedBackend api([&](const std::string& request) {
    return Action::SendAndClose(kHead + std::string(request.starts_with("GET /base/cut ")
                                                        ? "data: one\n\ndata: partial"
                                                        : "data: one\n\n"));
  });
  auto gateway = StartGateway({ApiJson("live", api.port(), R"(,"sse":true)", "/base")});
  WorkerHealth health(*gateway, kOrdinary);
  for (const auto& [target, clean] : {std::pair{"/live/cut", false}, {"/live/whole", true}}) {
    SCOPED_TRACE(target);
    RawConnection client(gateway->port());
    client.Send(std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_TRUE(client.WaitForClose(5s)) << client.received();
    EXPECT_THAT(client.received(), HasSubstr("data: one\n\n"));
    if (clean) {
      EXPECT_THAT(client.received(), EndsWith("\r\n0\r\n\r\n"));
    } else {
      EXPECT_THAT(client.received(), Not(HasSubstr("\r\n0\r\n\r\n")))
          << "a stream cut inside an event ended as if complete";
    }
  }
  health.ExpectRecovered();
}

}  // namespace
}  // namespace apim
