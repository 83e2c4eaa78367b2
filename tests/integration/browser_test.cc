// A real browser against the gateway: headless Chromium (Debian's), driven by playwright-core
// through tests/browser/eventsources.mjs, loads a page of the gateway's HTTPS origin that opens 50
// EventSources to it. Over HTTP/2 all 50 receive events on one connection; with HTTP/2 turned off
// Chromium's six connections per host serve six and the rest hang, which is why HTTP/2 matters
// (and what makes this test able to fail).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/gateway.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/test_certificates.h"

namespace apim::testing {
namespace {

using namespace std::chrono_literals;

class BrowserTest : public ::testing::Test {
 protected:
  std::unique_ptr<GatewayProcess> Gateway(std::vector<std::string> args) {
    const std::string snapshot = SnapshotJsonWithTier(
        R"({"name":"standard","longLivedConnections":true,"idleTimeoutSeconds":240,)"
        R"("heartbeatIntervalSeconds":30})",
        {ApiJson("feed", backend_.port(), R"(,"sse":true)")},
        R"("certificates":[{"name":"gw","certificateChainFile":")" + certificate_.cert.string() +
            R"(","privateKeyFile":")" + certificate_.key.string() + R"(","isDefault":true}])");
    args.insert(args.end(), {"--tls-listen", "127.0.0.1:0"});
    return std::make_unique<GatewayProcess>(dir_.path(), snapshot, args);
  }

  // The browser trusts exactly this certificate's key (base64 SHA-256 of its SPKI).
  std::string Spki() const {
    const CommandResult hash = RunCommand(
        "/bin/sh", {"-c", "openssl x509 -pubkey -noout -in '" + certificate_.cert.string() +
                              "' | openssl pkey -pubin -outform DER | openssl dgst -sha256 "
                              "-binary | base64"});
    EXPECT_EQ(hash.exit_code, 0) << hash.err;
    return hash.out.substr(0, hash.out.find('\n'));
  }

  // Runs the page against the gateway's TLS port; the one JSON line it prints.
  std::string OpenEventSources(uint16_t port, int count) {
    const CommandResult run =
        RunCommand("/usr/bin/env",
                   {"node", BROWSER_TESTS_DIR "/eventsources.mjs", "--origin",
                    "https://gw.test:" + std::to_string(port), "--path", "/feed/events", "--count",
                    std::to_string(count), "--spki", Spki(), "--resolve", "gw.test=127.0.0.1",
                    "--timeout-ms", "20000", "--settle-ms", "2000"},
                   {}, 40s);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out;
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  TestCa ca_{dir_.path(), "browser"};
  CertificateFiles certificate_ = ca_.Issue("gw-cert", 2, "DNS:gw.test");
};

TEST_F(BrowserTest, FiftyEventSourcesOfOnePageAllReceiveEventsOverHttp2) {
  auto gateway = Gateway({});
  const std::string result = OpenEventSources(gateway->tls_port(), 50);
  EXPECT_EQ(JsonNumber(result, "with_events"), 50u) << result;
  EXPECT_EQ(JsonNumber(result, "h2"), 50u) << result;
}

TEST_F(BrowserTest, WithHttp2OffTheBrowserServesOnlySixEventSourcesOfAnOrigin) {
  auto gateway = Gateway({"--no-http2"});
  const std::string result = OpenEventSources(gateway->tls_port(), 50);
  EXPECT_EQ(JsonNumber(result, "with_events"), 6u) << result;
  EXPECT_EQ(JsonNumber(result, "http/1.1"), 6u) << result;
}

}  // namespace
}  // namespace apim::testing
