// HTTP/2 to clients: h2c with prior knowledge on the plaintext listener and ALPN h2 on the TLS
// one; every SSE behaviour per stream (events the moment they are sent, heartbeats between
// events, tier limits, problem+json); RST_STREAM closing that stream's backend only; a backend
// dying reset as RST_STREAM; flow control as backpressure (a stream the client does not read holds
// its backend, and the worker's memory stays bounded); SETTINGS_MAX_CONCURRENT_STREAMS, the header
// list limit, rapid reset, PING/SETTINGS floods and malformed frames; idle connections, drain
// with GOAWAY; and --no-http2. A real gateway process, the real sse-test-backend, an nghttp2
// client (tests/support/h2_client) and raw frames (tests/support/h2_frames).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "tests/support/gateway.h"
#include "tests/support/h2_client.h"
#include "tests/support/h2_frames.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_certificates.h"
#include "tests/support/worker_health.h"

namespace apim::testing {
namespace {

using namespace std::chrono_literals;

// The worker's resident memory, in bytes.
uint64_t ResidentBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Every raw frame a server wrote, read until `done` holds for them or the peer closes.
std::vector<H2ParsedFrame> ReadFramesUntil(RawConnection& connection,
                                           const std::function<bool(const H2ParsedFrame&)>& done,
                                           std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<H2ParsedFrame> frames = ParseH2Frames(connection.received());
    for (const H2ParsedFrame& frame : frames) {
      if (done(frame)) return frames;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms || connection.WaitForClose(std::min(left, 100ms))) {
      return ParseH2Frames(connection.received());
    }
  }
}

bool IsGoaway(const H2ParsedFrame& frame) { return frame.type == NGHTTP2_GOAWAY; }

class Http2Test : public ::testing::Test {
 protected:
  // /orders (ordinary) and /feed (SSE with 1 s heartbeats) on the backend, a tier as given.
  std::string Snapshot(const std::string& tier_extra = "", const std::string& extra = "") const {
    return SnapshotJsonWithTier(
        R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
        R"("heartbeatIntervalSeconds":30)" +
            tier_extra + "}",
        {ApiJson("orders", backend_.port()),
         ApiJson("feed", backend_.port(), R"(,"sse":true,"heartbeatIntervalSeconds":1)")},
        extra);
  }

  std::unique_ptr<GatewayProcess> Gateway(std::vector<std::string> args = {},
                                          const std::string& tier_extra = "") {
    return std::make_unique<GatewayProcess>(dir_.path(), Snapshot(tier_extra), std::move(args));
  }

  // A gateway with a TLS listener serving the test CA's localhost certificate.
  std::unique_ptr<GatewayProcess> TlsGateway(std::vector<std::string> args = {}) {
    const std::string certificate = R"("certificates":[{"name":"local","certificateChainFile":")" +
                                    localhost_.cert.string() + R"(","privateKeyFile":")" +
                                    localhost_.key.string() + R"(","isDefault":true}])";
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:0"});
    return std::make_unique<GatewayProcess>(dir_.path(), Snapshot("", certificate), args);
  }

  H2Options Tls() const {
    H2Options options;
    TlsClient tls;
    tls.ca_file = ca_.cert();
    options.tls = tls;
    return options;
  }

  static H2Fields EventStream() { return {{"accept", "text/event-stream"}}; }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  TestCa ca_{dir_.path(), "clients"};
  CertificateFiles localhost_ = ca_.Issue("localhost-cert");
};

TEST_F(Http2Test, PriorKnowledgeOnThePlaintextPortServesRequestsAndEventsAsTheyAreSent) {
  auto gateway = Gateway();
  H2Connection client(gateway->port());
  ASSERT_TRUE(client.WaitForSettings(5s)) << client.error();
  EXPECT_EQ(client.remote_setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 256u);

  const int32_t ordinary = client.Request("GET", "/orders/json?size=100");
  ASSERT_TRUE(client.WaitForClose(ordinary, 5s)) << client.error();
  EXPECT_EQ(client.response(ordinary).status, 200);
  EXPECT_TRUE(client.response(ordinary).end_stream);
  EXPECT_EQ(client.response(ordinary).body.size(), 100u);
  EXPECT_EQ(client.response(ordinary).header("transfer-encoding"), "");

  // One event a second: the first arrives long before the second is even sent.
  const int32_t stream =
      client.Request("GET", "/feed/events?count=3&interval_ms=1500", EventStream());
  ASSERT_TRUE(client.WaitForBody(stream, "id: 1\n", 1200ms)) << client.response(stream).body;
  EXPECT_EQ(client.response(stream).status, 200);
  EXPECT_EQ(client.response(stream).header("content-type"), "text/event-stream");
  EXPECT_EQ(client.response(stream).body.find("id: 2"), std::string::npos);
  // Quiet for 1.5 s with 1 s heartbeats: a comment between events, never inside one.
  ASSERT_TRUE(client.WaitForBody(stream, ":\n\n", 3s)) << client.response(stream).body;
  ASSERT_TRUE(client.WaitForClose(stream, 10s));
  const H2Response& events = client.response(stream);
  EXPECT_TRUE(events.end_stream);
  EXPECT_FALSE(events.reset);
  EXPECT_NE(events.body.find("id: 3\n"), std::string::npos);
  EXPECT_GE(Metric(*gateway, "apim_http2_streams_total"), 2);

  // A request body crosses whole: the backend echoes how many bytes it got.
  const std::string body(300'000, 'b');
  const int32_t post =
      client.Request("POST", "/orders/echo", {{"content-type", "text/plain"}}, body);
  ASSERT_TRUE(client.WaitForClose(post, 10s)) << client.error();
  EXPECT_EQ(client.response(post).status, 200);
  EXPECT_NE(client.response(post).body.find("\"body_bytes\":300000"), std::string::npos)
      << client.response(post).body.substr(0, 500);
}

TEST_F(Http2Test, AlpnChoosesH2AndFiftyEventStreamsShareOneConnection) {
  auto gateway = TlsGateway();
  H2Connection client(gateway->tls_port(), Tls());
  std::vector<int32_t> streams;
  for (int i = 0; i < 50; ++i) {
    streams.push_back(client.Request("GET", "/feed/events?interval_ms=300&i=" + std::to_string(i),
                                     EventStream()));
  }
  ASSERT_TRUE(client.RunUntil(
      [&] {
        for (int32_t id : streams) {
          if (client.response(id).body.find("id: 2\n") == std::string::npos) return false;
        }
        return true;
      },
      10s))
      << client.error();
  EXPECT_EQ(Metric(*gateway, "apim_active_connections"), 1);
  EXPECT_EQ(Metric(*gateway, "apim_active_streams"), 50);
  EXPECT_EQ(backend_.Stats().open_streams, 50u);

  // The backend learns that the client came over TLS.
  const int32_t echo = client.Request("GET", "/orders/echo");
  ASSERT_TRUE(client.WaitForClose(echo, 5s));
  EXPECT_NE(client.response(echo).body.find(R"("x-forwarded-proto":"https")"), std::string::npos)
      << client.response(echo).body;

  // HTTP/1.1 clients of the same port are still served, and said to be on https too.
  TlsClient http11;
  http11.ca_file = ca_.cert();
  RawConnection plain(gateway->tls_port(), http11);
  EXPECT_EQ(plain.alpn(), "http/1.1");
  plain.Send("GET /orders/echo HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(plain.ReadUntil("}", 5s)) << plain.received();
  EXPECT_NE(plain.received().find(R"("x-forwarded-proto":"https")"), std::string::npos)
      << plain.received();
}

TEST_F(Http2Test, AResetStreamClosesItsBackendAtOnceAndNothingElse) {
  auto gateway = Gateway();
  H2Connection client(gateway->port());
  const int32_t leaving = client.Request("GET", "/feed/events?interval_ms=200", EventStream());
  const int32_t staying = client.Request("GET", "/feed/events?interval_ms=200", EventStream());
  ASSERT_TRUE(client.WaitForBody(leaving, "id: 1\n", 5s));
  ASSERT_TRUE(client.WaitForBody(staying, "id: 1\n", 5s));

  client.Reset(leaving);
  ASSERT_TRUE(client.Flush());
  // The backend sees its client leave within the long poll's bound, not at the next event.
  EXPECT_EQ(backend_.Stats(1, 5s).streams_closed_by_client, 1u);
  EXPECT_EQ(backend_.Stats().open_streams, 1u);
  ASSERT_TRUE(client.WaitForBody(staying, "id: 4\n", 5s));
  EXPECT_FALSE(client.response(staying).closed);
  EXPECT_TRUE(PollUntil([&] { return Metric(*gateway, "apim_active_streams") == 1; }));
}

TEST_F(Http2Test, ABackendDyingMidStreamResetsThatStreamOnly) {
  auto gateway = Gateway();
  H2Connection client(gateway->port());
  const int32_t dying =
      client.Request("GET", "/feed/events?interval_ms=50&die_after=3", EventStream());
  ASSERT_TRUE(client.WaitForClose(dying, 5s)) << client.error();
  const H2Response& cut = client.response(dying);
  EXPECT_TRUE(cut.reset) << "a cut stream must not look like a clean end";
  EXPECT_EQ(cut.reset_code, static_cast<uint32_t>(NGHTTP2_INTERNAL_ERROR));
  EXPECT_NE(cut.body.find("id: 3\n"), std::string::npos);

  // The connection goes on.
  const int32_t next = client.Request("GET", "/orders/json?size=10");
  ASSERT_TRUE(client.WaitForClose(next, 5s));
  EXPECT_EQ(client.response(next).status, 200);
}

TEST_F(Http2Test, AStreamTheClientDoesNotReadHoldsItsBackendAndTheWorkersMemoryStaysBounded) {
  auto gateway = Gateway();
  H2Connection client(gateway->port());
  // About 24 MiB offered at once, to a client that never opens this stream's window.
  const int32_t stalled =
      client.Request("GET", "/feed/events?count=1500&interval_ms=0&size=16000", EventStream());
  client.StopReading(stalled);
  ASSERT_TRUE(client.WaitForBody(stalled, "id: 1\n", 5s));
  const uint64_t resident_before = ResidentBytes(gateway->process().pid());
  // Another stream of the same connection is not held up.
  const int32_t other = client.Request("GET", "/feed/events?count=3&interval_ms=10", EventStream());
  ASSERT_TRUE(client.WaitForClose(other, 5s));
  EXPECT_TRUE(client.response(other).end_stream);

  // The backend is held back: it sends no more than the sockets on the way hold.
  BackendStats stats;
  EXPECT_TRUE(PollUntil(
      [&] {
        const uint64_t sent = backend_.Stats().events_sent;
        const bool settled = sent == stats.events_sent;
        stats.events_sent = sent;
        return settled;
      },
      5s));
  EXPECT_LT(stats.events_sent, 1000u) << "the backend sent on as if nobody held it";
  EXPECT_LE(client.response(stalled).body.size(), 65535u);
  const uint64_t resident_after = ResidentBytes(gateway->process().pid());
  EXPECT_LT(resident_after, resident_before + 4 * 1024 * 1024)
      << "the worker buffered what the client did not read";

  // Once the client reads, every event arrives.
  client.ResumeReading(stalled);
  ASSERT_TRUE(client.WaitForClose(stalled, 30s)) << client.error();
  EXPECT_TRUE(client.response(stalled).end_stream);
  EXPECT_NE(client.response(stalled).body.find("id: 1500\n"), std::string::npos);
}

TEST_F(Http2Test, TierLimitsAndErrorsArePerStreamProblems) {
  // Two streams at most on this tier: the third is refused with a problem, on the same
  // connection, and the first two go on.
  auto gateway = Gateway({}, R"(,"maxConcurrentStreams":2)");
  H2Connection client(gateway->port());
  const int32_t first = client.Request("GET", "/feed/events?interval_ms=200", EventStream());
  const int32_t second = client.Request("GET", "/feed/events?interval_ms=200", EventStream());
  ASSERT_TRUE(client.WaitForBody(first, "id: 1\n", 5s));
  ASSERT_TRUE(client.WaitForBody(second, "id: 1\n", 5s));
  const int32_t third = client.Request("GET", "/feed/events?interval_ms=200", EventStream());
  ASSERT_TRUE(client.WaitForClose(third, 5s));
  EXPECT_GE(client.response(third).status, 400);
  EXPECT_EQ(client.response(third).header("content-type"), "application/problem+json");
  EXPECT_TRUE(client.response(third).end_stream);

  const int32_t unknown = client.Request("GET", "/nowhere");
  ASSERT_TRUE(client.WaitForClose(unknown, 5s));
  EXPECT_EQ(client.response(unknown).status, 404);
  EXPECT_EQ(client.response(unknown).header("content-type"), "application/problem+json");
  ASSERT_TRUE(client.WaitForBody(first, "id: 3\n", 5s));
  EXPECT_FALSE(client.response(second).closed);
}

TEST_F(Http2Test, AStreamPastTheTiersMaxDurationIsResetAndItsSiblingGoesOn) {
  auto gateway = Gateway({}, R"(,"maxResponseDurationSeconds":1)");
  H2Connection client(gateway->port());
  const int32_t stream = client.Request("GET", "/feed/events?interval_ms=100", EventStream());
  ASSERT_TRUE(client.WaitForClose(stream, 5s)) << client.error();
  EXPECT_TRUE(client.response(stream).reset) << "a cut stream must not look like a clean end";
  EXPECT_NE(client.response(stream).body.find("id: 2\n"), std::string::npos);
  // Counted when the exchange ends, just after the reset went out.
  EXPECT_TRUE(PollUntil([&] { return Metric(*gateway, "apim_responses_cut_total") == 1; }));
  const int32_t next = client.Request("GET", "/orders/json?size=10");
  ASSERT_TRUE(client.WaitForClose(next, 5s));
  EXPECT_EQ(client.response(next).status, 200);
}

TEST_F(Http2Test, ASubscriptionsStreamCapCountsHttp2Streams) {
  const std::string snapshot = SnapshotJsonWithTier(
      R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
      R"("heartbeatIntervalSeconds":30})",
      {ApiJson("feed", backend_.port(), R"(,"sse":true,"subscriptionRequired":true)")},
      R"("subscriptions":[{"name":"acme","apis":["feed"],"keySha256":[")" + Sha256Hex("acme-key") +
          R"("],"maxConcurrentStreams":2}])");
  GatewayProcess gateway(dir_.path(), snapshot);
  H2Connection client(gateway.port());
  H2Fields keyed = EventStream();
  keyed.emplace_back("ocp-apim-subscription-key", "acme-key");
  const int32_t first = client.Request("GET", "/feed/events?interval_ms=200", keyed);
  const int32_t second = client.Request("GET", "/feed/events?interval_ms=200", keyed);
  ASSERT_TRUE(client.WaitForBody(first, "id: 1\n", 5s));
  ASSERT_TRUE(client.WaitForBody(second, "id: 1\n", 5s));
  const int32_t third = client.Request("GET", "/feed/events?interval_ms=200", keyed);
  ASSERT_TRUE(client.WaitForClose(third, 5s));
  EXPECT_EQ(client.response(third).status, 429) << client.response(third).body;
  EXPECT_EQ(client.response(third).header("content-type"), "application/problem+json");
  // A stream that ends gives its slot back.
  client.Reset(first);
  ASSERT_TRUE(client.Flush());
  EXPECT_TRUE(PollUntil([&] {
    const int32_t again = client.Request("GET", "/feed/events?interval_ms=200", keyed);
    return client.WaitForBody(again, "id: 1\n", 1s);
  }));
}

TEST_F(Http2Test, AConsumptionTierRefusesEventStreamsOverHttp2) {
  const std::string snapshot = SnapshotJson({ApiJson("feed", backend_.port())},
                                            /*long_lived=*/false);
  GatewayProcess gateway(dir_.path(), snapshot);
  H2Connection client(gateway.port());
  const int32_t stream = client.Request("GET", "/feed/events", EventStream());
  ASSERT_TRUE(client.WaitForClose(stream, 5s));
  EXPECT_GE(client.response(stream).status, 400);
  EXPECT_EQ(client.response(stream).header("content-type"), "application/problem+json");
  EXPECT_NE(client.response(stream).body.find("consumption"), std::string::npos)
      << client.response(stream).body;
}

TEST_F(Http2Test, StreamsPastTheConcurrentLimitAreRefused) {
  auto gateway = Gateway({"--http2-max-concurrent-streams", "2"});
  WorkerHealth health(*gateway, "/orders/json?size=8");
  RawConnection raw(gateway->port());
  const std::string block = H2RequestHeaderBlock("GET", "/feed/events?interval_ms=200", "localhost",
                                                 {{"accept", "text/event-stream"}});
  // The client does not wait for the server's SETTINGS: three streams at once.
  raw.Send(std::string(H2ClientPreface()) + H2Settings({}) + H2Headers(1, block, true) +
           H2Headers(3, block, true) + H2Headers(5, block, true));
  const auto frames = ReadFramesUntil(
      raw, [](const H2ParsedFrame& frame) { return frame.type == NGHTTP2_RST_STREAM; }, 5s);
  bool refused = false;
  for (const H2ParsedFrame& frame : frames) {
    if (frame.type == NGHTTP2_RST_STREAM && frame.stream_id == 5) {
      refused = H2RstStreamCode(frame) == NGHTTP2_REFUSED_STREAM;
    }
  }
  EXPECT_TRUE(refused);
  raw.Close();
  EXPECT_TRUE(health.ExpectRecovered());
}

TEST_F(Http2Test, AHeaderListOverTheLimitGets431AndTheConnectionGoesOn) {
  auto gateway = Gateway();
  H2Connection client(gateway->port());
  H2Fields large;
  for (int i = 0; i < 8; ++i)
    large.emplace_back("x-large-" + std::to_string(i), std::string(5000, 'v'));
  const int32_t refused = client.Request("GET", "/orders/json", large);
  ASSERT_TRUE(client.WaitForClose(refused, 5s)) << client.error();
  EXPECT_EQ(client.response(refused).status, 431);
  EXPECT_EQ(client.response(refused).header("content-type"), "application/problem+json");
  const int32_t next = client.Request("GET", "/orders/json?size=10");
  ASSERT_TRUE(client.WaitForClose(next, 5s));
  EXPECT_EQ(client.response(next).status, 200);
}

TEST_F(Http2Test, RapidResetClosesTheConnectionWithEnhanceYourCalm) {
  auto gateway = Gateway();
  WorkerHealth health(*gateway, "/orders/json?size=8");
  RawConnection raw(gateway->port());
  const std::string block = H2RequestHeaderBlock("GET", "/orders/json?size=8", "localhost");
  // CVE-2023-44487: streams opened and reset at once, many times over, in one write.
  std::string attack = std::string(H2ClientPreface()) + H2Settings({});
  for (uint32_t id = 1; id < 2 * 1000; id += 2) {
    attack += H2Headers(id, block, true) + H2RstStream(id, NGHTTP2_CANCEL);
  }
  raw.Send(attack);
  const auto frames = ReadFramesUntil(raw, IsGoaway, 10s);
  ASSERT_FALSE(frames.empty());
  const auto goaway = std::find_if(frames.begin(), frames.end(), IsGoaway);
  ASSERT_NE(goaway, frames.end());
  EXPECT_EQ(H2GoawayErrorCode(*goaway), static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
  EXPECT_TRUE(raw.WaitForClose(5s));
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_http2_abuse_closed_total{reason="rapid_reset"})"), 1);
  // The backend saw far fewer requests than were sent.
  EXPECT_LT(backend_.Stats().connections_accepted, 400u);
  EXPECT_TRUE(health.ExpectRecovered());
}

TEST_F(Http2Test, PingAndSettingsFloodsCloseTheConnection) {
  auto gateway = Gateway();
  WorkerHealth health(*gateway, "/orders/json?size=8");
  for (const bool pings : {true, false}) {
    RawConnection raw(gateway->port());
    std::string flood = std::string(H2ClientPreface()) + H2Settings({});
    for (uint64_t i = 0; i < 1000; ++i) flood += pings ? H2Ping(i) : H2Settings({});
    raw.Send(flood);
    const auto frames = ReadFramesUntil(raw, IsGoaway, 10s);
    const auto goaway = std::find_if(frames.begin(), frames.end(), IsGoaway);
    ASSERT_NE(goaway, frames.end()) << (pings ? "PING" : "SETTINGS");
    EXPECT_EQ(H2GoawayErrorCode(*goaway), static_cast<uint32_t>(NGHTTP2_ENHANCE_YOUR_CALM));
    EXPECT_TRUE(raw.WaitForClose(5s));
  }
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_http2_abuse_closed_total{reason="control_flood"})"), 2);
  EXPECT_TRUE(health.ExpectRecovered());
}

TEST_F(Http2Test, MalformedInputLeavesTheWorkerServing) {
  auto gateway = Gateway();
  WorkerHealth health(*gateway, "/orders/json?size=8");
  const std::vector<std::string> attempts = {
      // A frame too large for the default SETTINGS_MAX_FRAME_SIZE.
      std::string(H2ClientPreface()) + H2Settings({}) +
          H2Frame(NGHTTP2_DATA, 0, 1, std::string(20000, 'x')),
      // A header block that is not HPACK.
      std::string(H2ClientPreface()) + H2Settings({}) + H2Headers(1, std::string(64, '\xff'), true),
      // Requests without :path, and with a connection-specific field.
      std::string(H2ClientPreface()) + H2Settings({}) +
          H2Headers(1, H2HeaderBlock({{":method", "GET"}, {":scheme", "http"}}), true) +
          H2Headers(
              3,
              H2RequestHeaderBlock("GET", "/orders/json", "localhost", {{"connection", "close"}}),
              true),
      // Stream ids going backwards, DATA on an idle stream.
      std::string(H2ClientPreface()) + H2Settings({}) +
          H2Headers(5, H2RequestHeaderBlock("GET", "/orders/json", "localhost"), true) +
          H2Headers(3, H2RequestHeaderBlock("GET", "/orders/json", "localhost"), true) +
          H2Data(9, "x", true),
      // Not a preface at all after the first bytes.
      std::string(H2ClientPreface()).substr(0, 20) + "garbage\r\n\r\n",
  };
  for (const std::string& attempt : attempts) {
    RawConnection raw(gateway->port());
    raw.Send(attempt);
    raw.WaitForClose(2s);
  }
  EXPECT_TRUE(health.ExpectRecovered());
}

TEST_F(Http2Test, AnIdleConnectionIsClosedButOneWithAStreamStaysOpen) {
  auto gateway = Gateway({}, R"(,"idleTimeoutSeconds":2,"heartbeatIntervalSeconds":1)");
  H2Connection idle(gateway->port());
  H2Connection busy(gateway->port());
  const int32_t stream =
      busy.Request("GET", "/feed/events?count=1&interval_ms=10&idle_after=1", EventStream());
  ASSERT_TRUE(busy.WaitForBody(stream, "id: 1\n", 5s));
  // Idle once its one request has been answered.
  const int32_t request = idle.Request("GET", "/orders/json?size=10");
  ASSERT_TRUE(idle.WaitForClose(request, 5s));
  ASSERT_TRUE(idle.WaitForGoaway(5s)) << idle.error();
  EXPECT_EQ(idle.goaway()->error_code, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  EXPECT_TRUE(idle.WaitForConnectionClose(5s));
  // The stream is quiet but for heartbeats (1 s): the connection outlives the idle timeout.
  EXPECT_FALSE(busy.RunUntil([&] { return busy.connection_closed(); }, 3s));
  EXPECT_NE(busy.response(stream).body.find(":\n\n"), std::string::npos);
  EXPECT_FALSE(busy.goaway());
}

TEST_F(Http2Test, DrainSendsGoawayAndEndsStreamsAtAnEventBoundary) {
  auto gateway = Gateway({"--drain-timeout", "1"});
  H2Connection client(gateway->port());
  const int32_t stream = client.Request("GET", "/feed/events?interval_ms=100", EventStream());
  ASSERT_TRUE(client.WaitForBody(stream, "id: 2\n", 5s));
  gateway->process().Signal(SIGTERM);
  ASSERT_TRUE(client.WaitForGoaway(2s)) << "GOAWAY is sent when the drain starts";
  ASSERT_TRUE(client.WaitForClose(stream, 5s));
  const H2Response& drained = client.response(stream);
  EXPECT_TRUE(drained.end_stream) << "the stream ends cleanly, so the client reconnects";
  EXPECT_FALSE(drained.reset);
  EXPECT_TRUE(drained.body.ends_with("\n\n")) << drained.body.substr(drained.body.size() - 100);
  EXPECT_TRUE(client.WaitForConnectionClose(5s));
  EXPECT_EQ(client.goaway()->error_code, static_cast<uint32_t>(NGHTTP2_NO_ERROR));
  EXPECT_EQ(gateway->process().WaitForExit(5s).code, 0);
}

TEST_F(Http2Test, WithHttp2TurnedOffOnlyHttp11IsSpoken) {
  auto gateway = TlsGateway({"--no-http2"});
  TlsClient offer_both;
  offer_both.ca_file = ca_.cert();
  offer_both.alpn = "h2,http/1.1";
  EXPECT_EQ(RawConnection(gateway->tls_port(), offer_both).alpn(), "http/1.1");
  EXPECT_THROW(H2Connection(gateway->tls_port(), Tls()), std::runtime_error);
  // The preface on the plaintext port is an HTTP/1.1 request the gateway cannot parse.
  RawConnection raw(gateway->port());
  raw.Send(std::string(H2ClientPreface()) + H2Settings({}));
  ASSERT_TRUE(raw.ReadUntil("\r\n\r\n", 5s));
  EXPECT_TRUE(raw.received().starts_with("HTTP/1.1 400")) << raw.received();
}

}  // namespace
}  // namespace apim::testing
