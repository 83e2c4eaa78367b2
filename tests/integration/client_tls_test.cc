// TLS to clients on the worker's --tls-listen: the certificate chosen by SNI (exact names, one
// wildcard label, else the default), ALPN h2 or http/1.1, certificates rotated by a reload without
// dropping an open stream, a certificate that cannot be loaded refused while the old ones stay,
// clients that fail the handshake (plaintext, nothing served) leaving the worker alive, and the
// relay's behaviours over a TLS client connection. A real gateway process (standalone, PEM files
// named in its snapshot file), the real sse-test-backend, certificates made with the openssl CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "tests/support/control_plane.h"
#include "tests/support/gateway.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_certificates.h"
#include "tests/support/worker_health.h"

namespace apim::testing {
namespace {

using namespace std::chrono_literals;

std::string EventsRequest(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
}

// A certificate of a standalone snapshot: PEM files, the hostnames it serves, default or not.
std::string Served(const std::string& name, const CertificateFiles& files,
                   const std::vector<std::string>& hostnames, bool is_default = false) {
  std::string json = R"({"name":")" + name + R"(","certificateChainFile":")" + files.cert.string() +
                     R"(","privateKeyFile":")" + files.key.string() + R"(","isDefault":)" +
                     (is_default ? "true" : "false") + R"(,"hostnames":[)";
  for (size_t i = 0; i < hostnames.size(); ++i) {
    json += (i ? ",\"" : "\"") + hostnames[i] + "\"";
  }
  return json + "]}";
}

class ClientTlsTest : public ::testing::Test {
 protected:
  // Snapshot `version`: /orders (ordinary) and /feed (SSE, 1 s heartbeats) on the backend, and
  // the certificates given.
  std::string Snapshot(int version, const std::vector<std::string>& certificates) const {
    std::string json =
        R"({"version":")" + std::to_string(version) +
        R"(","gateway":"test","tier":{"name":"standard","longLivedConnections":true,)"
        R"("idleTimeoutSeconds":240,"heartbeatIntervalSeconds":30},"apis":[)" +
        ApiJson("orders", backend_.port()) + "," +
        ApiJson("feed", backend_.port(), R"(,"sse":true,"heartbeatIntervalSeconds":1)") +
        R"(],"certificates":[)";
    for (size_t i = 0; i < certificates.size(); ++i) json += (i ? "," : "") + certificates[i];
    return json + "]}";
  }

  std::unique_ptr<GatewayProcess> Gateway(const std::vector<std::string>& certificates) {
    return std::make_unique<GatewayProcess>(
        dir_.path(), Snapshot(1, certificates),
        std::vector<std::string>{"--tls-listen", "127.0.0.1:0"});
  }

  // A TLS client of the test CA sending `server_name` as SNI.
  TlsClient Client(const std::string& server_name = "localhost") const {
    TlsClient client;
    client.server_name = server_name;
    client.ca_file = ca_.cert();
    return client;
  }

  void TearDown() override {
    if (HasFailure()) {
      for (auto& entry : std::filesystem::directory_iterator(dir_.path())) {
        if (entry.path().extension() == ".err") {
          std::ifstream in(entry.path());
          std::stringstream text;
          text << in.rdbuf();
          std::cerr << entry.path() << ":\n" << text.str().substr(0, 5000) << "\n";
        }
      }
    }
  }
  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  TestCa ca_{dir_.path(), "clients"};
  CertificateFiles localhost_ = ca_.Issue("localhost-cert");
};

TEST_F(ClientTlsTest, TheCertificateIsChosenBySniWithTheDefaultForOtherNames) {
  const CertificateFiles api = ca_.Issue("api-cert", 2, "DNS:api.test.local");
  const CertificateFiles wild = ca_.Issue("wild-cert", 2, "DNS:*.wild.test");
  auto gateway =
      Gateway({Served("api", api, {"api.test.local"}), Served("wild", wild, {"*.wild.test"}),
               Served("local", localhost_, {"localhost"}, /*is_default=*/true)});
  ASSERT_NE(gateway->tls_port(), 0);

  EXPECT_EQ(RawConnection(gateway->tls_port(), Client("api.test.local")).peer_subject(),
            "CN=api-cert");
  EXPECT_EQ(RawConnection(gateway->tls_port(), Client("API.Test.Local")).peer_subject(),
            "CN=api-cert")
      << "SNI is matched case-insensitively";
  EXPECT_EQ(RawConnection(gateway->tls_port(), Client("x.wild.test")).peer_subject(),
            "CN=wild-cert");
  // A wildcard covers one label only; names nobody serves get the default.
  TlsClient deeper = Client("a.b.wild.test");
  deeper.verify_name = false;
  EXPECT_EQ(RawConnection(gateway->tls_port(), deeper).peer_subject(), "CN=localhost-cert");
  TlsClient unknown = Client("unknown.test");
  unknown.verify_name = false;
  EXPECT_EQ(RawConnection(gateway->tls_port(), unknown).peer_subject(), "CN=localhost-cert");
  TlsClient no_sni = Client("");
  EXPECT_EQ(RawConnection(gateway->tls_port(), no_sni).peer_subject(), "CN=localhost-cert");

  // ALPN: h2 preferred when offered, else http/1.1; a client offering neither is served without.
  RawConnection http11(gateway->tls_port(), Client());
  EXPECT_EQ(http11.alpn(), "http/1.1");
  TlsClient both = Client();
  both.alpn = "http/1.1,h2";
  EXPECT_EQ(RawConnection(gateway->tls_port(), both).alpn(), "h2");
  TlsClient other = Client();
  other.alpn = "spdy/3";
  EXPECT_EQ(RawConnection(gateway->tls_port(), other).alpn(), "");

  // Requests over TLS are served as over plaintext.
  http11.Send("GET /orders/json?size=100 HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(http11.ReadUntil("}", 5s)) << http11.received();
  EXPECT_TRUE(http11.received().starts_with("HTTP/1.1 200")) << http11.received();

  // Handshakes and the certificates' expiry are in /metrics.
  EXPECT_GE(MetricSeries(*gateway, "apim_client_tls_handshakes_total{result=\"full\"}"), 8);
  EXPECT_GT(
      MetricSeries(*gateway, "apim_certificate_not_after_seconds{hostname=\"api.test.local\"}"),
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

TEST_F(ClientTlsTest, ARotatedCertificateReachesNewHandshakesWhileAnOpenStreamGoesOn) {
  auto gateway = Gateway({Served("local", localhost_, {"localhost"}, true)});
  RawConnection stream(gateway->tls_port(), Client());
  stream.Send(EventsRequest("/feed/events?interval_ms=200"));
  ASSERT_TRUE(stream.ReadUntil("id: 1\n", 5s)) << stream.received();

  const CertificateFiles renewed = ca_.Issue("renewed-cert");
  gateway->Reload(Snapshot(2, {Served("local", renewed, {"localhost"}, true)}));
  ASSERT_TRUE(PollUntil([&] { return MetricSeries(*gateway, "apim_config_version") == 2; }, 10s));

  EXPECT_EQ(RawConnection(gateway->tls_port(), Client()).peer_subject(), "CN=renewed-cert");
  // The stream opened before the rotation goes on, on its own connection.
  EXPECT_EQ(stream.peer_subject(), "CN=localhost-cert");
  const size_t seen = stream.received().size();
  ASSERT_TRUE(stream.ReadUntil("id: 5\n", 5s)) << stream.received();
  EXPECT_GT(stream.received().size(), seen);
}

TEST_F(ClientTlsTest, ACertificateThatCannotBeLoadedIsRefusedAndTheOldOnesStay) {
  auto gateway = Gateway({Served("local", localhost_, {"localhost"}, true)});
  WorkerHealth health(*gateway, "/orders/json?size=8");
  const CertificateFiles other = ca_.Issue("other-cert");
  // The certificate of one pair with the key of another.
  gateway->Reload(Snapshot(
      2, {Served("local", CertificateFiles{other.cert, localhost_.key}, {"localhost"}, true)}));
  ASSERT_TRUE(WaitForFileContent(gateway->process().stderr_path(), "reload refused", 10s));
  EXPECT_TRUE(WaitForFileContent(gateway->process().stderr_path(),
                                 "certificate \"local\" cannot be served", 1s));
  EXPECT_EQ(MetricSeries(*gateway, "apim_config_version"), 1);
  EXPECT_EQ(RawConnection(gateway->tls_port(), Client()).peer_subject(), "CN=localhost-cert");
  health.ExpectRecovered();
}

TEST_F(ClientTlsTest, ClientsThatFailTheHandshakeLeaveTheWorkerServing) {
  auto gateway = Gateway({Served("local", localhost_, {"localhost"}, true)});
  WorkerHealth health(*gateway, "/orders/json?size=8");

  // Plaintext HTTP to the TLS port: the handshake fails and the connection closes.
  RawConnection plaintext(gateway->tls_port());
  plaintext.Send("GET /orders/json HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_TRUE(plaintext.WaitForClose(5s));
  // A client that does not trust the certificate.
  const TestCa stranger(dir_.path(), "stranger");
  TlsClient distrusting = Client();
  distrusting.ca_file = stranger.cert();
  EXPECT_THROW(RawConnection(gateway->tls_port(), distrusting), std::runtime_error);
  EXPECT_TRUE(PollUntil(
      [&] {
        return MetricSeries(*gateway, "apim_client_tls_handshakes_total{result=\"failed\"}") >= 2;
      },
      5s));
  health.ExpectRecovered();

  // With no certificate served, TLS clients are refused and the log says why, once.
  gateway->Reload(Snapshot(2, {}));
  ASSERT_TRUE(PollUntil([&] { return MetricSeries(*gateway, "apim_config_version") == 2; }, 10s));
  EXPECT_THROW(RawConnection(gateway->tls_port(), Client()), std::runtime_error);
  EXPECT_TRUE(WaitForFileContent(gateway->process().stderr_path(), "serves no certificate", 5s));
  health.ExpectRecovered();
}

TEST_F(ClientTlsTest, TheRelayBehavesOverATlsClientConnectionAsOverPlaintext) {
  auto gateway = Gateway({Served("local", localhost_, {"localhost"}, true)});

  // Heartbeats between events while the backend is silent.
  RawConnection quiet(gateway->tls_port(), Client());
  quiet.Send(EventsRequest("/feed/events?idle_after=1"));
  ASSERT_TRUE(quiet.ReadUntil("id: 1\n", 5s)) << quiet.received();
  EXPECT_TRUE(quiet.ReadUntil(":\n\n", 5s)) << "no heartbeat: " << quiet.received();

  // A client that leaves closes its backend connection at once (the next event is 30 s away).
  const uint64_t closed_before = backend_.Stats().streams_closed_by_client;
  RawConnection leaving(gateway->tls_port(), Client());
  leaving.Send(EventsRequest("/feed/events?interval_ms=30000"));
  ASSERT_TRUE(leaving.ReadUntil("id: 1\n", 5s));
  leaving.Close(/*reset=*/true);
  EXPECT_GE(backend_.Stats(closed_before + 1, 3s).streams_closed_by_client, closed_before + 1);

  // A backend that dies mid-stream ends it uncleanly: no last chunk, so EventSource reconnects.
  RawConnection dying(gateway->tls_port(), Client());
  dying.Send(EventsRequest("/feed/events?interval_ms=10&die_after=2"));
  ASSERT_TRUE(dying.WaitForClose(5s));
  EXPECT_NE(dying.received().find("id: 2\n"), std::string::npos) << dying.received();
  EXPECT_EQ(dying.received().find("\r\n0\r\n\r\n"), std::string::npos) << dying.received();

  // Backpressure: a client that reads nothing holds the backend back (about 30 MiB offered),
  // and gets every event once it reads.
  const uint64_t sent_before = backend_.Stats().events_sent;
  RawConnection slow(gateway->tls_port(), Client());
  slow.Send(EventsRequest("/feed/events?count=2000&interval_ms=0&size=16000"));
  EXPECT_FALSE(PollUntil([&] { return backend_.Stats().events_sent - sent_before >= 2000; }, 2s))
      << "the backend sent all it had to a client that read nothing";
  EXPECT_TRUE(slow.ReadUntil("id: 2000\n", 60s)) << "stopped after " << slow.received().size();
}

// The control plane's certificates reach a joined worker: the one bound to the gateway's hostname
// is served, and one the worker's OpenSSL refuses (a 512-bit RSA key, which the control plane can
// check but a worker must not serve) is NACKed while the worker keeps serving the one it had.
TEST_F(ClientTlsTest, PushedCertificatesAreServedAndOneAWorkerCannotLoadIsRefused) {
  ControlPlane control_plane(dir_.path());
  control_plane.Start();
  auto stub = control_plane.Stub();
  const auto create_certificate = [&](const std::string& name, const CertificateFiles& files) {
    v1::CreateCertificateRequest request;
    request.mutable_certificate()->set_name(name);
    request.mutable_certificate()->set_certificate_chain(ReadFile(files.cert));
    request.mutable_certificate()->set_private_key(ReadFile(files.key));
    v1::Certificate created;
    grpc::Status status = stub->CreateCertificate(AuthorizedContext().get(), request, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
  };
  // Binds `hostnames` (hostname -> certificate; the first is the default); the config version.
  const auto bind = [&](const std::vector<std::pair<std::string, std::string>>& hostnames) {
    v1::UpdateGatewayRequest request;
    request.mutable_gateway()->set_name("edge");
    for (const auto& [hostname, certificate] : hostnames) {
      v1::HostnameBinding* binding = request.mutable_gateway()->add_hostnames();
      binding->set_hostname(hostname);
      binding->set_certificate(certificate);
      binding->set_is_default(hostname == hostnames.front().first);
    }
    request.mutable_update_mask()->add_paths("hostnames");
    v1::Gateway updated;
    grpc::Status status = stub->UpdateGateway(AuthorizedContext().get(), request, &updated);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return status.ok() ? std::stoull(updated.etag()) : 0;
  };

  v1::CreateGatewayRequest gateway;
  gateway.mutable_gateway()->set_name("edge");
  gateway.mutable_gateway()->set_tier("standard");
  v1::Gateway created;
  ASSERT_TRUE(stub->CreateGateway(AuthorizedContext().get(), gateway, &created).ok());
  v1::CreateApiRequest api;
  api.mutable_api()->set_name("orders");
  api.mutable_api()->set_path_prefix("/orders");
  api.mutable_api()->set_backend_url("http://127.0.0.1:" + std::to_string(backend_.port()));
  api.mutable_api()->add_gateways("edge");
  v1::Api made;
  ASSERT_TRUE(stub->CreateApi(AuthorizedContext().get(), api, &made).ok());
  create_certificate("local", localhost_);
  const uint64_t bound = bind({{"localhost", "local"}});
  v1::RotateGatewayTokenRequest rotate;
  rotate.set_name("edge");
  v1::GatewayToken token;
  ASSERT_TRUE(stub->RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());

  auto worker = GatewayProcess::Join(dir_.path(), control_plane.address(), "edge", token.token(),
                                     "w1", {"--tls-listen", "127.0.0.1:0"});
  ASSERT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "applied config version " + std::to_string(bound), 20s));
  RawConnection secure(worker->tls_port(), Client());
  EXPECT_EQ(secure.peer_subject(), "CN=localhost-cert");
  secure.Send("GET /orders/json?size=10 HTTP/1.1\r\nHost: localhost\r\n\r\n");
  ASSERT_TRUE(secure.ReadUntil("}", 5s)) << secure.received();
  EXPECT_TRUE(secure.received().starts_with("HTTP/1.1 200")) << secure.received();

  const std::filesystem::path weak_key = dir_.path() / "weak.key";
  const std::filesystem::path weak_cert = dir_.path() / "weak.crt";
  ASSERT_EQ(RunCommand("/usr/bin/openssl",
                       {"req", "-x509", "-newkey", "rsa:512", "-nodes", "-keyout",
                        weak_key.string(), "-out", weak_cert.string(), "-days", "2", "-subj",
                        "/CN=weak.test", "-addext", "subjectAltName=DNS:weak.test"})
                .exit_code,
            0);
  create_certificate("weak", CertificateFiles{weak_cert, weak_key});
  const uint64_t refused = bind({{"localhost", "local"}, {"weak.test", "weak"}});
  ASSERT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "refused config version " + std::to_string(refused), 20s));
  EXPECT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "certificate \"weak\" cannot be served", 1s));
  EXPECT_EQ(RawConnection(worker->tls_port(), Client()).peer_subject(), "CN=localhost-cert");
  TlsClient weak = Client("weak.test");
  weak.verify_name = false;
  EXPECT_EQ(RawConnection(worker->tls_port(), weak).peer_subject(), "CN=localhost-cert")
      << "the refused snapshot's certificates are not served";
}

}  // namespace
}  // namespace apim::testing
