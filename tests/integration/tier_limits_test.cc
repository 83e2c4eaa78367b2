// The tier rules of SSE in a real worker: streams refused on consumption before any backend
// contact, heartbeats only between events, cuts at the max response duration and the idle
// timeout, the concurrent-stream limit, and a SIGTERM drain that ends streams cleanly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/support/gateway.h"
#include "tests/support/raw_http.h"
#include "tests/support/worker_health.h"

namespace apim {
namespace {

using apim::testing::ApiJson;
using apim::testing::BackendProcess;
using apim::testing::Dechunk;
using apim::testing::GatewayProcess;
using apim::testing::HttpRequest;
using apim::testing::RawConnection;
using apim::testing::SnapshotJsonWithTier;
using apim::testing::TempDir;
using apim::testing::WaitForFileContent;
using apim::testing::WorkerHealth;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr char kConsumption[] =
    R"({"name":"consumption","longLivedConnections":false,"maxResponseDurationSeconds":30,)"
    R"("idleTimeoutSeconds":240})";

std::string Standard(const std::string& extra) {
  return R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240)" + extra + "}";
}

// The body of a stream read raw, without chunk framing.
std::string StreamBody(const std::string& raw) {
  return Dechunk(raw.substr(raw.find("\r\n\r\n") + 4));
}

class TierLimitsTest : public ::testing::Test {
 protected:
  // An SSE API at /feed on the standard tier, with a heartbeat after 1 s of quiet.
  std::string FeedWithHeartbeatEverySecond() {
    return SnapshotJsonWithTier(
        Standard(""),
        {ApiJson("feed", backend_.port(), R"(,"sse":true,"heartbeatIntervalSeconds":1)")});
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
};

TEST_F(TierLimitsTest, ConsumptionRefusesStreamsBeforeContactingTheBackend) {
  GatewayProcess gateway(dir_.path(),
                         SnapshotJsonWithTier(kConsumption, {ApiJson("plain", backend_.port())}));
  WorkerHealth health(gateway, "/plain/json");
  const uint64_t before = backend_.Stats().connections_accepted;
  auto sse = HttpRequest(gateway.port(), "GET", "/plain/events", "Accept: text/event-stream\r\n");
  EXPECT_EQ(sse.status, 501);
  EXPECT_EQ(apim::testing::HeaderValue(sse.head, "content-type"), "application/problem+json");
  EXPECT_THAT(sse.body, HasSubstr("consumption"));
  EXPECT_THAT(sse.body, HasSubstr("text/event-stream"));
  auto websocket = HttpRequest(gateway.port(), "GET", "/plain/socket",
                               "Connection: Upgrade\r\nUpgrade: websocket\r\n");
  EXPECT_EQ(websocket.status, 501);
  EXPECT_THAT(websocket.body, HasSubstr("WebSocket"));
  // Only this test's own /stats calls reached the backend.
  EXPECT_EQ(backend_.Stats().connections_accepted, before + 1);
  // Ordinary requests are served.
  health.ExpectRecovered();
}

TEST_F(TierLimitsTest, ConsumptionAnswers502WhenTheBackendStreamsAnyway) {
  GatewayProcess gateway(dir_.path(),
                         SnapshotJsonWithTier(kConsumption, {ApiJson("plain", backend_.port())}));
  WorkerHealth health(gateway, "/plain/json");
  auto response = HttpRequest(gateway.port(), "GET", "/plain/events?count=1&interval_ms=1");
  EXPECT_EQ(response.status, 502);
  EXPECT_THAT(response.body, HasSubstr("unexpected-event-stream"));
  health.ExpectRecovered();
}

TEST_F(TierLimitsTest, AHeartbeatArrivesDuringAQuietStream) {
  GatewayProcess gateway(dir_.path(), FeedWithHeartbeatEverySecond());
  RawConnection client(gateway.port());
  client.Send("GET /feed/events?idle_after=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\"seq\":1,", 5s));
  ASSERT_TRUE(client.ReadUntil("\r\n:\n\n\r\n", 3s)) << client.received();
  EXPECT_THAT(StreamBody(client.received()), HasSubstr("}\n\n:\n\n"));
}

TEST_F(TierLimitsTest, ABomSplitAcrossReadsAfterAHeartbeatIsDroppedWhole) {
  GatewayProcess gateway(dir_.path(), FeedWithHeartbeatEverySecond());
  RawConnection client(gateway.port());
  // Silence for 1.5 s (a heartbeat goes out), the BOM's first byte, 1.5 s more, the rest of it.
  client.Send("GET /feed/events?bom_split_ms=1500&count=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.ReadUntil("\r\n0\r\n\r\n", 8s)) << client.received();
  const std::string body = StreamBody(client.received());
  // After a heartbeat the BOM would no longer open the stream but start the first field's name.
  EXPECT_TRUE(body.starts_with(":\n\n")) << body;
  EXPECT_EQ(body.find_first_of("\xEF\xBB\xBF"), std::string::npos) << body;
  EXPECT_THAT(body, HasSubstr("\nid: 1\ndata: {\"seq\":1,"));
}

TEST_F(TierLimitsTest, NoHeartbeatIsInjectedInsideAnEventTheBackendPausesIn) {
  GatewayProcess gateway(dir_.path(), FeedWithHeartbeatEverySecond());
  RawConnection client(gateway.port());
  // Event 2 stops halfway for 3 s (three heartbeat intervals), then the stream goes quiet.
  client.Send(
      "GET /feed/events?interval_ms=10&pause_after=1&pause_mid_event_ms=3000&idle_after=2 "
      "HTTP/1.1\r\nHost: x\r\n\r\n");
  // The first half of event 2 arrives at once; the rest 3 s later; a heartbeat an interval after.
  ASSERT_TRUE(client.ReadUntil("\r\n:\n\n\r\n", 8s)) << client.received();
  const std::string body = StreamBody(client.received());
  const size_t start = body.find("id: 2\n");
  const size_t end = body.find("\n\n", start);
  ASSERT_NE(start, std::string::npos);
  const std::string event_2 = body.substr(start, end - start);
  EXPECT_THAT(event_2, Not(HasSubstr(":\n"))) << "heartbeat inside an event: " << body;
  EXPECT_THAT(event_2, ::testing::MatchesRegex("id: 2\ndata: \\{\"seq\":2,\"ts_ns\":[0-9]+.*\\}"));
  EXPECT_THAT(body.substr(end), HasSubstr("\n\n:\n\n")) << body;
}

TEST_F(TierLimitsTest, ResponsesAreCutAtTheTiersMaxDuration) {
  GatewayProcess gateway(
      dir_.path(), SnapshotJsonWithTier(Standard(R"(,"maxResponseDurationSeconds":1)"),
                                        {ApiJson("feed", backend_.port(), R"(,"sse":true)")}));
  WorkerHealth health(gateway, "/feed/json");
  RawConnection client(gateway.port());
  const auto start = std::chrono::steady_clock::now();
  client.Send("GET /feed/events?interval_ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(client.WaitForClose(5s));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_THAT(client.received(), Not(HasSubstr("\r\n0\r\n\r\n"))) << "a cut, not an end";
  ASSERT_TRUE(WaitForFileContent(gateway.process().stdout_path(), "s limit of tier", 5s));
  health.ExpectRecovered();
}

TEST_F(TierLimitsTest, TheIdleTimeoutClosesATrulyIdleConnection) {
  GatewayProcess gateway(
      dir_.path(),
      SnapshotJsonWithTier(R"({"name":"quick","longLivedConnections":true,"idleTimeoutSeconds":1})",
                           {ApiJson("feed", backend_.port(), R"(,"sse":true)")}));
  WorkerHealth health(gateway, "/feed/json");
  RawConnection stream(gateway.port());
  stream.Send("GET /feed/events?idle_after=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1,", 5s));
  EXPECT_TRUE(stream.WaitForClose(4s)) << "a stream with no traffic and no heartbeats is idle";
  RawConnection keep_alive(gateway.port());
  EXPECT_EQ(HttpRequest(gateway.port(), "GET", "/feed/json").status, 200);
  EXPECT_TRUE(keep_alive.WaitForClose(4s)) << "a connection that sends nothing is closed";
  health.ExpectRecovered();
}

TEST_F(TierLimitsTest, StreamsPastTheTiersLimitGet503) {
  GatewayProcess gateway(dir_.path(),
                         SnapshotJsonWithTier(Standard(R"(,"maxConcurrentStreams":2)"),
                                              {ApiJson("feed", backend_.port(), R"(,"sse":true)"),
                                               ApiJson("orders", backend_.port())}));
  RawConnection first(gateway.port());
  RawConnection second(gateway.port());
  for (RawConnection* stream : {&first, &second}) {
    stream->Send("GET /feed/events?interval_ms=200 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(stream->ReadUntil("\"seq\":1,", 5s));
  }
  WorkerHealth health(gateway, "/orders/json");  // With the two streams open.
  auto third = HttpRequest(gateway.port(), "GET", "/feed/events");
  EXPECT_EQ(third.status, 503);
  EXPECT_THAT(third.body, HasSubstr("too-many-streams"));
  EXPECT_THAT(HttpRequest(gateway.admin_port(), "GET", "/metrics").body,
              HasSubstr("apim_streams_refused_total 1"));
  health.ExpectRecovered();
}

TEST_F(TierLimitsTest, SigtermDrainsStreamsAtAnEventBoundaryAndExits) {
  GatewayProcess gateway(
      dir_.path(),
      SnapshotJsonWithTier(Standard(""), {ApiJson("feed", backend_.port(), R"(,"sse":true)")}),
      {"--drain-timeout", "1"});
  RawConnection stream(gateway.port());
  stream.Send("GET /feed/events?interval_ms=100 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(stream.ReadUntil("\"seq\":1,", 5s));
  const auto start = std::chrono::steady_clock::now();
  gateway.process().Signal(SIGTERM);
  ASSERT_TRUE(stream.WaitForClose(3s));
  auto exit = gateway.process().WaitForExit(3s);
  ASSERT_TRUE(exit.exited);
  EXPECT_EQ(exit.code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "drain timeout plus one second";
  // Ended cleanly, after a whole event.
  EXPECT_THAT(stream.received(), HasSubstr("}\n\n\r\n0\r\n\r\n"));
}

}  // namespace
}  // namespace apim
