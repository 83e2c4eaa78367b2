// The real apim-gateway between real clients and the real sse-test-backend, on loopback: events
// are relayed the moment they are written, nothing is buffered, and every way a stream can end
// (client leaves, backend dies, config changes) is handled as a user would expect.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

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
using apim::testing::JsonNumber;
using apim::testing::LoopbackListener;
using apim::testing::RawConnection;
using apim::testing::ResidentKib;
using apim::testing::SnapshotJson;
using apim::testing::TempDir;
using apim::testing::WorkerHealth;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// An ordinary request the workers here serve with 200 (the recovery check's).
constexpr char kOrdinary[] = "/orders/json?size=8";

// The TCP timer of a loopback socket, as /proc/net/tcp shows it.
struct TcpTimer {
  int kind = 0;  // 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe
  std::chrono::milliseconds due_in{0};
};

// TCP states as /proc/net/tcp shows them.
constexpr std::string_view kEstablished = "01";
constexpr std::string_view kSynSent = "02";

// The timer of a loopback socket in `state` from `local_port` (0: any) to `remote_port`, if there
// is one.
std::optional<TcpTimer> SocketTimer(std::string_view state_wanted, uint16_t local_port,
                                    uint16_t remote_port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // The column names.
  while (std::getline(table, line)) {
    // "sl local rem st tx:rx tr:when ...", addresses and numbers in hex.
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer;
    fields >> slot >> local >> remote >> state >> queues >> timer;
    const auto port = [](const std::string& address) {
      return static_cast<uint16_t>(std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
    };
    if (state != state_wanted || port(remote) != remote_port) continue;
    if (local_port != 0 && port(local) != local_port) continue;
    const long ticks = std::stol(timer.substr(timer.find(':') + 1), nullptr, 16);
    return TcpTimer{std::stoi(timer.substr(0, timer.find(':')), nullptr, 16),
                    std::chrono::milliseconds(ticks * 1000 / ::sysconf(_SC_CLK_TCK))};
  }
  return std::nullopt;
}

class GatewayRelayTest : public ::testing::Test {
 protected:
  std::string StreamRequest(const std::string& query, const std::string& headers = "") {
    return "GET /feed/events?" + query + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
  }
  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  GatewayProcess gateway_{dir_.path(),
                          SnapshotJson({ApiJson("feed", backend_.port(), ",\"sse\":true", "/base"),
                                        ApiJson("orders", backend_.port(), "", "/base")})};
  WorkerHealth health_{gateway_, kOrdinary};
};

TEST_F(GatewayRelayTest, AnEventReachesTheClientWhileTheBackendKeepsTheStreamOpen) {
  RawConnection client(gateway_.port());
  client.Send(StreamRequest("idle_after=1"));
  auto received = client.ReadUntil("\"seq\":1", 5s);
  ASSERT_TRUE(received) << client.received();
  EXPECT_THAT(*received, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(*received, HasSubstr("text/event-stream"));
  EXPECT_THAT(*received, HasSubstr("id: 1\n"));
  // The whole event, with its terminating blank line, is here although the stream goes on.
  EXPECT_TRUE(client.ReadUntil("}\n\n", 2s)) << client.received();
  EXPECT_FALSE(client.WaitForClose(200ms)) << "the stream must stay open";
}

TEST(GatewayKeepaliveTest, BothSocketsOfASilentStreamProbeTheirPeerWithTcpKeepalive) {
  // The client socket takes its options from the listener (Linux copies them on accept); the
  // backend socket gets them after connect. Both must carry --tcp-keepalive-idle.
  TempDir dir;
  BackendProcess backend(dir.path());
  GatewayProcess gateway(dir.path(),
                         SnapshotJson({ApiJson("feed", backend.port(), ",\"sse\":true")}),
                         {"--tcp-keepalive-idle", "37"});
  RawConnection client(gateway.port());
  client.Send("GET /feed/events?idle_after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("text/event-stream", 5s)) << client.received();
  for (auto [name, local_port, remote_port] :
       {std::tuple{"client socket", gateway.port(), client.local_port()},
        std::tuple{"backend socket", uint16_t{0}, backend.port()}}) {
    SCOPED_TRACE(name);
    // Until what was just sent is acknowledged, the socket shows its retransmit timer instead.
    std::optional<TcpTimer> timer;
    for (const auto give_up = std::chrono::steady_clock::now() + 2s;
         std::chrono::steady_clock::now() < give_up; std::this_thread::sleep_for(10ms)) {
      timer = SocketTimer(kEstablished, local_port, remote_port);
      if (timer && timer->kind == 2) break;
    }
    ASSERT_TRUE(timer) << "no established socket found";
    EXPECT_EQ(timer->kind, 2) << "keepalive timer expected";
    EXPECT_GT(timer->due_in, 30s);
    EXPECT_LE(timer->due_in, 37s);
  }
}

TEST_F(GatewayRelayTest, AnEventTheBackendPausesInTheMiddleOfArrivesIntact) {
  RawConnection client(gateway_.port());
  client.Send(StreamRequest("count=3&interval_ms=10&pause_after=1&pause_mid_event_ms=400"));
  // The first half of event 2 arrives before the backend finishes it.
  ASSERT_TRUE(client.ReadUntil("id: 2\n", 5s)) << client.received();
  const size_t before_pause = client.received().size();
  ASSERT_TRUE(client.ReadUntil("\"seq\":3", 5s)) << client.received();
  EXPECT_GT(client.received().size(), before_pause);
  const std::string& raw = client.received();
  std::string body = apim::testing::Dechunk(raw.substr(raw.find("\r\n\r\n") + 4));
  std::regex event("id: (\\d+)\ndata: \\{\"seq\":(\\d+),\"ts_ns\":\\d+[^\n]*\\}\n\n");
  int events = 0;
  for (std::sregex_iterator it(body.begin(), body.end(), event), end; it != end; ++it) {
    EXPECT_EQ((*it)[1], (*it)[2]);
    ++events;
  }
  EXPECT_EQ(events, 3) << body;
}

TEST_F(GatewayRelayTest, ClosingTheClientClosesTheBackendStreamWithinASecond) {
  for (const char* query : {"interval_ms=50", "idle_after=0"}) {  // busy, then silent
    SCOPED_TRACE(query);
    const uint64_t closed_before = backend_.Stats().streams_closed_by_client;
    RawConnection client(gateway_.port());
    client.Send(StreamRequest(query));
    ASSERT_TRUE(client.ReadUntil("text/event-stream", 5s)) << client.received();
    const auto closed_at = std::chrono::steady_clock::now();
    client.Close();
    EXPECT_EQ(backend_.Stats(closed_before + 1, 1s).streams_closed_by_client, closed_before + 1);
    EXPECT_LT(std::chrono::steady_clock::now() - closed_at, 1s);
  }
}

TEST_F(GatewayRelayTest, ABackendDyingMidStreamCutsTheClientWithoutTheChunkedTerminator) {
  RawConnection client(gateway_.port());
  client.Send(StreamRequest("interval_ms=20&die_after=2"));
  ASSERT_TRUE(client.WaitForClose(3s)) << "the client must see the stream end promptly";
  EXPECT_THAT(client.received(), HasSubstr("\"seq\":2"));
  EXPECT_THAT(client.received(), Not(HasSubstr("\r\n0\r\n\r\n")));
  health_.ExpectRecovered();
}

TEST_F(GatewayRelayTest, AClientThatStopsReadingHoldsBackTheBackendAndLosesNothing) {
  // 24 MiB of events, sent as fast as the backend can: more than the socket buffers on the way
  // hold, so while the client reads nothing the gateway must stop reading the backend rather
  // than buffer the stream; once the client reads again, every event must arrive, in order.
  constexpr uint64_t kEvents = 1500;
  const uint64_t resident_before = ResidentKib(gateway_.process().pid());
  RawConnection client(gateway_.port());
  client.Send(StreamRequest("count=1500&interval_ms=0&size=16384", "Connection: close\r\n"));
  auto events_sent = [&] { return backend_.Stats().events_sent; };
  // Held back: the backend's count stops moving (polled, for at most 10 s).
  uint64_t sent = events_sent();
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(50ms);
    const uint64_t now = events_sent();
    if (now == sent && now > 0) break;
    sent = now;
  }
  EXPECT_LT(sent, kEvents) << "the backend was never held back";
  EXPECT_LT(ResidentKib(gateway_.process().pid()), resident_before + 4096)
      << "the gateway buffered the stream instead of holding back the backend";

  ASSERT_TRUE(client.WaitForClose(30s));
  const std::string& received = client.received();
  const size_t body = received.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  const std::string stream = apim::testing::Dechunk(std::string_view(received).substr(body + 4));
  uint64_t expected = 1;
  for (size_t at = stream.find("\"seq\":"); at != std::string::npos;
       at = stream.find("\"seq\":", at + 1)) {
    ASSERT_EQ(std::stoull(stream.substr(at + 6, 12)), expected) << "an event lost or reordered";
    ++expected;
  }
  EXPECT_EQ(expected - 1, kEvents);
}

TEST_F(GatewayRelayTest, ACompleteStreamEndsWithTheChunkedTerminator) {
  auto response = HttpRequest(gateway_.port(), "GET", "/feed/events?count=2&interval_ms=10");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(HeaderValue(response.head, "transfer-encoding"), "chunked");
  EXPECT_THAT(response.body, HasSubstr("\"seq\":2"));
}

TEST_F(GatewayRelayTest, ACloseDelimitedBackendStreamIsRelayedChunked) {
  auto response =
      HttpRequest(gateway_.port(), "GET", "/feed/events?count=2&interval_ms=10&framing=close");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.body, HasSubstr("\"seq\":2"));
}

TEST_F(GatewayRelayTest, LastEventIdIsForwardedSoTheBackendCanResume) {
  auto response = HttpRequest(gateway_.port(), "GET", "/feed/events?count=1&interval_ms=10",
                              "Last-Event-ID: 41\r\n");
  EXPECT_THAT(response.body, HasSubstr("last-event-id 41"));
  EXPECT_THAT(response.body, HasSubstr("id: 42\n"));
}

TEST_F(GatewayRelayTest, AcceptEncodingGzipDoesNotChangeTheStream) {
  auto response = HttpRequest(gateway_.port(), "GET", "/feed/events?count=2&interval_ms=10",
                              "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(HeaderValue(response.head, "content-encoding"), "");
  EXPECT_THAT(response.body, HasSubstr("data: {\"seq\":1"));
}

TEST_F(GatewayRelayTest, OrdinaryJsonPassesThroughWithItsContentLength) {
  auto direct = HttpRequest(backend_.port(), "GET", "/base/json?size=5000");
  auto proxied = HttpRequest(gateway_.port(), "GET", "/orders/json?size=5000");
  EXPECT_EQ(proxied.status, 200);
  EXPECT_EQ(HeaderValue(proxied.head, "content-length"), std::to_string(direct.body.size()));
  EXPECT_EQ(proxied.body.size(), direct.body.size());
  EXPECT_THAT(HeaderValue(proxied.head, "content-type"), HasSubstr("application/json"));
}

TEST_F(GatewayRelayTest, ForwardsEndToEndHeadersAndAddsForwardedOnes) {
  auto echo = HttpRequest(gateway_.port(), "GET", "/orders/echo?x=1",
                          "Connection: close, X-Hop\r\nX-Hop: secret\r\nX-Trace: abc\r\n");
  EXPECT_EQ(echo.status, 200);
  EXPECT_THAT(echo.body, HasSubstr("\"target\":\"/base/echo?x=1\""));
  EXPECT_THAT(echo.body, HasSubstr("abc"));
  EXPECT_THAT(echo.body, Not(HasSubstr("secret"))) << "headers named in Connection are hop-by-hop";
  EXPECT_THAT(echo.body, HasSubstr("127.0.0.1"));
  EXPECT_THAT(echo.body, ::testing::ContainsRegex("[Xx]-[Ff]orwarded-[Pp]roto\":\"http\""));
}

TEST_F(GatewayRelayTest, RequestBodiesStreamToTheBackend) {
  RawConnection client(gateway_.port());
  client.Send(
      "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n5\r\nhello\r\n");
  client.Send("6\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(client.WaitForClose(5s));
  EXPECT_THAT(client.received(), HasSubstr("\"body_bytes\":11"));
}

TEST_F(GatewayRelayTest, MegabyteBodiesPassWholeBothWays) {
  auto direct = HttpRequest(backend_.port(), "GET", "/base/json?size=1000000");
  auto proxied = HttpRequest(gateway_.port(), "GET", "/orders/json?size=1000000");
  EXPECT_EQ(proxied.status, 200);
  EXPECT_EQ(proxied.body.size(), 1000000u);
  EXPECT_TRUE(proxied.body == direct.body) << "the buffered response differs from the backend's";

  const std::string body(1 << 20, 'x');
  RawConnection upload(gateway_.port());
  upload.Send("POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  ASSERT_TRUE(upload.WaitForClose(10s));
  EXPECT_THAT(upload.received(), HasSubstr("\"body_bytes\":1048576"));

  // A stream that answers a large POST (a prompt, say) relays its events after the body.
  RawConnection stream(gateway_.port());
  stream.Send(
      "POST /feed/events?count=3&interval_ms=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(stream.ReadUntil("\r\n0\r\n\r\n", 10s)) << stream.received();
  EXPECT_THAT(stream.received(), HasSubstr("id: 3\n"));
}

TEST(GatewayBufferingTest, BufferRequestBodySendsTheWholeBodyWithAContentLength) {
  TempDir dir;
  BackendProcess backend(dir.path());
  GatewayProcess gateway(
      dir.path(),
      SnapshotJson({ApiJson("orders", backend.port(), ",\"bufferRequestBody\":true", "/base")}));
  RawConnection client(gateway.port());
  client.Send(
      "POST /orders/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(client.WaitForClose(5s));
  EXPECT_THAT(client.received(), HasSubstr("\"body_bytes\":11"));
  EXPECT_THAT(client.received(), HasSubstr("\"content-length\":\"11\""));
  EXPECT_THAT(client.received(), Not(HasSubstr("chunked")));
}

TEST(GatewayBufferingTest, FailOnErrorStatusCodeTurnsABackendErrorInto502) {
  TempDir dir;
  BackendProcess backend(dir.path());
  GatewayProcess gateway(
      dir.path(),
      SnapshotJson({ApiJson("strict", backend.port(), ",\"failOnErrorStatusCode\":true", "/base"),
                    ApiJson("lenient", backend.port(), "", "/base")}));
  WorkerHealth health(gateway, "/lenient/json");
  auto strict = HttpRequest(gateway.port(), "GET", "/strict/status/503");
  EXPECT_EQ(strict.status, 502);
  EXPECT_THAT(strict.body, HasSubstr("backend-error-status"));
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/lenient/status/503").status, 503);
  health.ExpectRecovered();
}

TEST_F(GatewayRelayTest, UnknownPathsAreNotFoundProblems) {
  auto response = HttpRequest(gateway_.port(), "GET", "/nowhere");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(HeaderValue(response.head, "content-type"), "application/problem+json");
  EXPECT_THAT(response.body, HasSubstr("\"status\":404"));
  EXPECT_THAT(response.body, HasSubstr("\"type\":\"urn:apim:problem:no-api\""));
  // Prefixes match whole segments.
  EXPECT_EQ(HttpRequest(gateway_.port(), "GET", "/feedx/events").status, 404);
  EXPECT_EQ(HttpRequest(gateway_.port(), "GET", "/orders/../feed/events").status, 400);
  health_.ExpectRecovered();
}

TEST_F(GatewayRelayTest, MalformedRequestsGet400AndTheWorkerKeepsServing) {
  for (const char* garbage : {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                              "GET /orders/json HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                              "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"}) {
    RawConnection client(gateway_.port());
    client.Send(garbage);
    ASSERT_TRUE(client.WaitForClose(5s));
    EXPECT_THAT(client.received(), HasSubstr("400 Bad Request")) << garbage;
    EXPECT_THAT(client.received(), HasSubstr("application/problem+json"));
    health_.ExpectRecovered();
  }
}

TEST_F(GatewayRelayTest, OversizedHeadersGet431) {
  auto response = HttpRequest(gateway_.port(), "GET", "/orders/json",
                              "X-Big: " + std::string(40 * 1024, 'a') + "\r\n");
  EXPECT_EQ(response.status, 431);
  health_.ExpectRecovered();
}

TEST_F(GatewayRelayTest, AReloadKeepsOpenStreamsAndServesTheNewRoutes) {
  RawConnection stream(gateway_.port());
  stream.Send(StreamRequest("interval_ms=50"));
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1", 5s));

  gateway_.Reload(
      SnapshotJson({ApiJson("feed2", backend_.port(), ",\"sse\":true", "/base")}, true, 2));
  ASSERT_TRUE(apim::testing::WaitForFileContent(gateway_.process().stderr_path(),
                                                "serving config version 2", 5s));
  EXPECT_EQ(HttpRequest(gateway_.port(), "GET", "/orders/json").status, 404);
  EXPECT_EQ(HttpRequest(gateway_.port(), "GET", "/feed2/events?count=1&interval_ms=1").status, 200);
  // The stream opened under the old config keeps flowing.
  const std::string seen = stream.received();
  ASSERT_TRUE(stream.ReadUntil("\"seq\":" + std::to_string(JsonNumber(seen, "seq") + 3), 5s));
}

TEST_F(GatewayRelayTest, AnInvalidReloadKeepsThePreviousConfig) {
  gateway_.Reload("{\"version\":\"3\",\"apis\":[{\"name\":\"Bad\"}]}");
  ASSERT_TRUE(
      apim::testing::WaitForFileContent(gateway_.process().stderr_path(), "reload refused", 5s));
  health_.ExpectRecovered();
}

// A standalone config's diagnostic settings get the control plane's rules: a header name that
// would split the log line, or body logging past 8 KiB, is refused on reload like a bad API.
TEST_F(GatewayRelayTest, AReloadWithInvalidDiagnosticSettingsIsRefused) {
  int version = 10;
  for (const std::string diagnostic : {R"({"scope":"global","headers":["X-Evil\r\nInjected"]})",
                                       R"({"scope":"global","requestBodyBytes":100000000})"}) {
    const std::string snapshot =
        SnapshotJson({ApiJson("feed", backend_.port(), ",\"sse\":true")}, true, ++version);
    gateway_.Reload(snapshot.substr(0, snapshot.size() - 1) + ",\"diagnostics\":[" + diagnostic +
                    "]}");
    ASSERT_TRUE(apim::testing::WaitForFileContent(gateway_.process().stderr_path(),
                                                  "diagnostic_setting.", 5s))
        << diagnostic;
  }
  EXPECT_THAT(gateway_.process().Stderr(), HasSubstr("reload refused"));
  EXPECT_THAT(HttpRequest(gateway_.admin_port(), "GET", "/metrics").body,
              HasSubstr("apim_config_version 1\n"));
  health_.ExpectRecovered();
}

TEST_F(GatewayRelayTest, AdminEndpointsReportHealthReadinessAndMetrics) {
  EXPECT_EQ(HttpRequest(gateway_.admin_port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(HttpRequest(gateway_.admin_port(), "GET", "/readyz").status, 200);
  HttpRequest(gateway_.port(), "GET", "/feed/events?count=2&interval_ms=1");
  auto metrics = HttpRequest(gateway_.admin_port(), "GET", "/metrics");
  EXPECT_THAT(metrics.body, HasSubstr("apim_requests_total{api=\"feed\",status=\"200\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("apim_events_relayed_total 2"));
  EXPECT_THAT(metrics.body, HasSubstr("apim_config_version 1"));
  EXPECT_THAT(metrics.body, HasSubstr("apim_active_streams 0"));
}

TEST_F(GatewayRelayTest, TheAccessLogHasOneJsonLinePerRequestAndNoBodies) {
  HttpRequest(gateway_.port(), "GET", "/feed/events?count=2&interval_ms=1");
  ASSERT_TRUE(
      apim::testing::WaitForFileContent(gateway_.process().stdout_path(), "\"events\":2", 5s));
  const std::string log = gateway_.process().Stdout();
  EXPECT_THAT(log, HasSubstr("\"api\":\"feed\""));
  EXPECT_THAT(log, HasSubstr("\"stream\":true"));
  EXPECT_THAT(log, Not(HasSubstr("ts_ns"))) << "bodies are never logged";
}

TEST_F(GatewayRelayTest, AThousandConcurrentStreamsEachReceiveEveryEvent) {
  const std::string url = "http://127.0.0.1:" + std::to_string(gateway_.port()) +
                          "/feed/events?count=5&interval_ms=200";
  auto load = apim::testing::RunCommand(
      SSE_LOAD_BIN, {"--url", url, "--streams", "1000", "--duration", "30", "--json"}, {}, 60s);
  ASSERT_EQ(load.exit_code, 0) << load.err;
  EXPECT_EQ(JsonNumber(load.out, "connected"), 1000u) << load.out;
  EXPECT_EQ(JsonNumber(load.out, "finished"), 1000u) << load.out;
  EXPECT_EQ(JsonNumber(load.out, "events"), 5000u) << load.out;
  EXPECT_EQ(JsonNumber(load.out, "total"), 0u) << "errors: " << load.out;
}

class GatewayFailureTest : public ::testing::Test {
 protected:
  // A snapshot with `api` and, for the recovery check, "orders" on a working backend.
  std::string WithOrders(const std::string& api) {
    return SnapshotJson({api, ApiJson("orders", backend_.port(), "", "/base")});
  }
  TempDir dir_;
  BackendProcess backend_{dir_.path()};
};

TEST_F(GatewayFailureTest, AnUnreachableBackendIs502) {
  // A port nobody listens on: one a listener had a moment ago.
  const uint16_t dead_port = LoopbackListener(1).port();
  GatewayProcess gateway(dir_.path(), WithOrders(ApiJson("gone", dead_port, "", "/base")));
  WorkerHealth health(gateway, kOrdinary);
  auto response = HttpRequest(gateway.port(), "GET", "/gone/x");
  EXPECT_EQ(response.status, 502);
  EXPECT_THAT(response.body, HasSubstr("backend-unreachable"));
  health.ExpectRecovered();
}

TEST_F(GatewayFailureTest, ABackendThatSendsNoHeadersInTimeIs504) {
  // A listener that never accepts: the kernel completes the handshake, nobody answers.
  LoopbackListener backend(16);
  GatewayProcess gateway(
      dir_.path(), WithOrders(ApiJson("slow", backend.port(), ",\"timeoutSeconds\":1", "/base")));
  WorkerHealth health(gateway, kOrdinary);
  const auto start = std::chrono::steady_clock::now();
  auto response = HttpRequest(gateway.port(), "GET", "/slow/x");
  EXPECT_EQ(response.status, 504);
  EXPECT_THAT(response.body, HasSubstr("backend-timeout"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  health.ExpectRecovered();
}

TEST_F(GatewayFailureTest, ABackendNamedByHostNameIsResolvedAndReached) {
  const std::string api =
      R"({"name":"named","pathPrefix":"/named","backendUrl":"http://localhost:)" +
      std::to_string(backend_.port()) + R"(/base"})";
  GatewayProcess gateway(dir_.path(), SnapshotJson({api}));
  auto response = HttpRequest(gateway.port(), "GET", "/named/echo");
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_THAT(response.body, HasSubstr("\"target\":\"/base/echo\""));
}

TEST_F(GatewayFailureTest, ABackendWhoseHandshakeDoesNotFinishInTimeIs504) {
  LoopbackListener backend(0);
  RawConnection filler(backend.port());  // Fills the accept queue: later SYNs are dropped.
  GatewayProcess gateway(dir_.path(), WithOrders(ApiJson("stuck", backend.port(), "", "/base")),
                         {"--connect-timeout", "1"});
  WorkerHealth health(gateway, kOrdinary);
  const auto start = std::chrono::steady_clock::now();
  auto response = HttpRequest(gateway.port(), "GET", "/stuck/x");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(response.status, 504);
  EXPECT_THAT(response.body, HasSubstr("backend-timeout"));
  EXPECT_THAT(response.body, HasSubstr("cannot connect to the backend of api \\\"stuck\\\""));
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3s);
  health.ExpectRecovered();
}

TEST_F(GatewayFailureTest, ABackendReachedOnlyByARetransmittedSynServesTheRequest) {
  LoopbackListener backend(0);
  RawConnection filler(backend.port());  // Fills the accept queue: later SYNs are dropped.
  GatewayProcess gateway(dir_.path(), SnapshotJson({ApiJson("late", backend.port(), "", "/base")}));
  RawConnection client(gateway.port());
  client.Send("GET /late/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  // The gateway's first SYN has been dropped once its socket waits in SYN_SENT.
  bool waiting = false;
  for (const auto give_up = std::chrono::steady_clock::now() + 3s;
       !waiting && std::chrono::steady_clock::now() < give_up; std::this_thread::sleep_for(10ms)) {
    waiting = SocketTimer(kSynSent, 0, backend.port()).has_value();
  }
  ASSERT_TRUE(waiting) << "the gateway's connect never waited in its handshake";
  ASSERT_GE(backend.Accept(1s), 0);  // The filler: now the retransmitted SYN finds room.
  const int connection = backend.Accept(5s);
  ASSERT_GE(connection, 0) << "the gateway did not connect after its SYN was retransmitted";
  std::string request;
  char buffer[4096];
  pollfd readable{connection, POLLIN, 0};
  while (request.find("\r\n\r\n") == std::string::npos && ::poll(&readable, 1, 5000) == 1) {
    const ssize_t got = ::recv(connection, buffer, sizeof buffer, 0);
    if (got <= 0) break;
    request.append(buffer, static_cast<size_t>(got));
  }
  EXPECT_THAT(request, HasSubstr("GET /base/x HTTP/1.1\r\n"));
  constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nreached";
  ASSERT_EQ(::send(connection, kResponse.data(), kResponse.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(kResponse.size()));
  auto received = client.ReadUntil("reached", 5s);
  ASSERT_TRUE(received) << client.received();
  EXPECT_THAT(*received, HasSubstr("HTTP/1.1 200"));
}

TEST_F(GatewayFailureTest, SlowRequestHeadersAreCutAtTheHeaderTimeout) {
  GatewayProcess gateway(dir_.path(),
                         SnapshotJson({ApiJson("orders", backend_.port(), "", "/base")}),
                         {"--request-header-timeout", "1"});
  WorkerHealth health(gateway, kOrdinary);
  RawConnection slow(gateway.port());
  slow.Send("GET /orders/json HTTP/1.1\r\nHost: x\r\n");  // and never the blank line
  ASSERT_TRUE(slow.WaitForClose(4s));
  EXPECT_THAT(slow.received(), HasSubstr("408"));
  health.ExpectRecovered();
}

}  // namespace
}  // namespace apim
