// https:// backends: ordinary calls and event streams over TLS verified by default, each
// handshake failure answered with a 502 (504 for a timeout) that says why while the worker stays
// alive, mTLS to a backend that requires it, sessions resumed for new streams, and the relay's
// behaviours over TLS (heartbeats between events, a client that leaves closes the backend at once,
// a backend that dies ends the stream uncleanly, backpressure). A real gateway process; HTTPS test
// backends in this process (the code of sse-test-backend --tls-cert-file), certificates made with
// the openssl CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/gateway.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/scripted_backend.h"
#include "tests/support/sse_backend.h"
#include "tests/support/test_certificates.h"
#include "tests/support/worker_health.h"

namespace apim::testing {
namespace {

using namespace std::chrono_literals;

// `text` as a JSON string literal.
std::string Json(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string EventsRequest(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: gateway.test\r\nAccept: text/event-stream\r\n\r\n";
}

class BackendTlsTest : public ::testing::Test {
 protected:
  // An HTTPS test backend with `cert`; with `client_ca`, it requires client certificates.
  static std::unique_ptr<SseBackend> Https(const CertificateFiles& cert,
                                           const std::string& client_ca = "") {
    SseBackendOptions options;
    options.tls_cert_file = cert.cert.string();
    options.tls_key_file = cert.key.string();
    options.tls_client_ca_file = client_ca;
    return std::make_unique<SseBackend>(options);
  }

  static uint16_t Start(SseBackend& backend) {
    absl::StatusOr<uint16_t> port = backend.Start("127.0.0.1:0");
    EXPECT_TRUE(port.ok()) << port.status();
    return port.ok() ? *port : 0;
  }

  // An SSE API at /NAME with a 1 s heartbeat on https://127.0.0.1:PORT; `tls` is its backendTls.
  static std::string HttpsApi(const std::string& name, uint16_t port, const std::string& tls = "") {
    return R"({"name":")" + name + R"(","pathPrefix":"/)" + name +
           R"(","backendUrl":"https://127.0.0.1:)" + std::to_string(port) +
           R"(","sse":true,"heartbeatIntervalSeconds":1)" +
           (tls.empty() ? "" : R"(,"backendTls":{)" + tls + "}") + "}";
  }

  // A worker serving `apis` plus /plain (a plaintext backend, for the health checks), trusting
  // the test CA for backends that name none.
  std::unique_ptr<GatewayProcess> Gateway(std::vector<std::string> apis) {
    apis.push_back(ApiJson("plain", Start(plain_)));
    return std::make_unique<GatewayProcess>(
        dir_.path(), SnapshotJson(apis),
        std::vector<std::string>{"--backend-ca-file", ca_.cert().string(), "--connect-timeout",
                                 "1"});
  }

  TempDir dir_;
  TestCa ca_{dir_.path(), "backends"};
  CertificateFiles cert_ = ca_.Issue("backend");
  std::unique_ptr<SseBackend> backend_ = Https(cert_);
  SseBackend plain_;
};

TEST_F(BackendTlsTest, OrdinaryCallsAndStreamsGoOverVerifiedTls) {
  auto gateway = Gateway({HttpsApi("secure", Start(*backend_))});

  SimpleResponse json = HttpRequest(gateway->port(), "GET", "/secure/json?size=100");
  EXPECT_EQ(json.status, 200) << json.body;
  EXPECT_GE(json.body.size(), 100u);

  SimpleResponse events =
      HttpRequest(gateway->port(), "GET", "/secure/events?count=3&interval_ms=5",
                  "Accept: text/event-stream\r\n");
  EXPECT_EQ(events.status, 200);
  EXPECT_NE(events.body.find("id: 3\n"), std::string::npos) << events.body;
  EXPECT_GE(MetricSeries(*gateway, R"(apim_backend_tls_handshakes_total{result="full"})"), 1);
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_backend_tls_handshakes_total{result="failed"})"), 0);
}

TEST_F(BackendTlsTest, NewStreamsToAWarmBackendResumeTheSession) {
  auto gateway = Gateway({HttpsApi("secure", Start(*backend_))});
  // Open streams at once, so that each needs a connection of its own.
  std::vector<std::unique_ptr<RawConnection>> streams;
  for (int i = 0; i < 5; ++i) {
    streams.push_back(std::make_unique<RawConnection>(gateway->port()));
    streams.back()->Send(EventsRequest("/secure/events?interval_ms=30000"));
    ASSERT_TRUE(streams.back()->ReadUntil("id: 1\n", 5s)) << streams.back()->received();
  }
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_backend_tls_handshakes_total{result="full"})"), 1);
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_backend_tls_handshakes_total{result="resumed"})"), 4);
  EXPECT_EQ(backend_->stats().tls_resumed, 4u);
}

TEST_F(BackendTlsTest, EachHandshakeFailureIsA502ThatSaysWhyAndTheWorkerStaysAlive) {
  TestCa other(dir_.path(), "other");
  auto expired = Https(ca_.Issue("expired", -1));
  ScriptedBackend silent(ScriptedBackend::Action::Silent());
  const uint16_t port = Start(*backend_);
  auto gateway = Gateway({
      HttpsApi("untrusted", port, R"("caCertificate":)" + Json(ReadFile(other.cert()))),
      HttpsApi("mismatch", port, R"("serverName":"elsewhere.example")"),
      HttpsApi("expired", Start(*expired)),
      HttpsApi("silent", silent.port()),
      HttpsApi(
          "unverified", port,
          R"("caCertificate":)" + Json(ReadFile(other.cert())) + R"(,"skipVerification":true)"),
  });
  WorkerHealth health(*gateway, "/plain/json?size=8");

  struct Case {
    std::string path;
    int status;
    std::string reason;
  };
  for (const Case& failure : std::vector<Case>{{"/untrusted/json", 502, "unknown CA"},
                                               {"/mismatch/json", 502, "name mismatch"},
                                               {"/expired/json", 502, "expired"},
                                               {"/silent/json", 504, "did not finish in time"}}) {
    SimpleResponse response = HttpRequest(gateway->port(), "GET", failure.path);
    EXPECT_EQ(response.status, failure.status) << failure.path << ": " << response.body;
    EXPECT_NE(response.body.find("backend-tls-failed"), std::string::npos) << response.body;
    EXPECT_NE(response.body.find(failure.reason), std::string::npos) << response.body;
    // The access log names the backend and the reason.
    EXPECT_TRUE(WaitForFileContent(gateway->process().stdout_path(), failure.reason, 5s))
        << gateway->process().Stdout();
  }
  EXPECT_EQ(MetricSeries(*gateway, R"(apim_backend_tls_handshakes_total{result="failed"})"), 4);
  // Skipping verification is explicit: it works, and the worker warned when it applied it.
  EXPECT_EQ(HttpRequest(gateway->port(), "GET", "/unverified/json").status, 200);
  EXPECT_NE(gateway->process().Stderr().find("is not verified"), std::string::npos);
  health.ExpectRecovered();
}

TEST_F(BackendTlsTest, MutualTlsToABackendThatRequiresIt) {
  TestCa clients(dir_.path(), "clients");
  CertificateFiles client = clients.Issue("gateway");
  auto strict = Https(cert_, clients.cert().string());
  const uint16_t port = Start(*strict);
  auto gateway = Gateway({
      HttpsApi("mutual", port,
               R"("clientCertificate":)" + Json(ReadFile(client.cert)) + R"(,"clientKey":)" +
                   Json(ReadFile(client.key))),
      HttpsApi("anonymous", port),
  });
  EXPECT_EQ(HttpRequest(gateway->port(), "GET", "/mutual/json").status, 200);
  SimpleResponse refused = HttpRequest(gateway->port(), "GET", "/anonymous/json");
  EXPECT_EQ(refused.status, 502);
  EXPECT_NE(refused.body.find("certificate required"), std::string::npos) << refused.body;
}

TEST_F(BackendTlsTest, TheRelayBehavesOverTlsAsOverPlaintext) {
  auto gateway = Gateway({HttpsApi("secure", Start(*backend_))});

  // Heartbeats between events while the backend is silent.
  RawConnection quiet(gateway->port());
  quiet.Send(EventsRequest("/secure/events?idle_after=1"));
  ASSERT_TRUE(quiet.ReadUntil("id: 1\n", 5s)) << quiet.received();
  EXPECT_TRUE(quiet.ReadUntil(":\n\n", 5s)) << "no heartbeat: " << quiet.received();

  // A client that leaves closes its backend connection at once (the next event is 30 s away).
  const uint64_t closed_before = backend_->stats().streams_closed_by_client;
  RawConnection leaving(gateway->port());
  leaving.Send(EventsRequest("/secure/events?interval_ms=30000"));
  ASSERT_TRUE(leaving.ReadUntil("id: 1\n", 5s));
  leaving.Close(/*reset=*/true);
  EXPECT_TRUE(PollUntil(
      [&] { return backend_->stats().streams_closed_by_client == closed_before + 1; }, 3s));

  // A backend that dies mid-stream ends it uncleanly: no last chunk, so EventSource reconnects.
  RawConnection dying(gateway->port());
  dying.Send(EventsRequest("/secure/events?interval_ms=10&die_after=2"));
  ASSERT_TRUE(dying.WaitForClose(5s));
  EXPECT_NE(dying.received().find("id: 2\n"), std::string::npos) << dying.received();
  EXPECT_EQ(dying.received().find("\r\n0\r\n\r\n"), std::string::npos) << dying.received();

  // Backpressure: a client that reads nothing holds the backend back (about 30 MiB offered),
  // and gets every event once it reads.
  const uint64_t sent_before = backend_->stats().events_sent;
  RawConnection slow(gateway->port());
  slow.Send(EventsRequest("/secure/events?count=2000&interval_ms=0&size=16000"));
  EXPECT_FALSE(PollUntil([&] { return backend_->stats().events_sent - sent_before >= 2000; }, 2s))
      << "the backend sent all it had to a client that read nothing";
  EXPECT_TRUE(slow.ReadUntil("id: 2000\n", 60s)) << "stopped after " << slow.received().size();
}

}  // namespace
}  // namespace apim::testing
