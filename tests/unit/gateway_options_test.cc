// apim-gateway's command line: the defaults the README lists, the values the flags set, and a
// message naming the flag for each mistake.
#include "dataplane/gateway_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "tests/support/process.h"

namespace apim::dataplane {
namespace {

using ::testing::HasSubstr;

class GatewayOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("APIM_GATEWAY_TOKEN"); }
  void TearDown() override { unsetenv("APIM_GATEWAY_TOKEN"); }

  // A file of the test's directory holding `contents`.
  std::string File(const std::string& name, std::string_view contents) {
    const std::filesystem::path path = dir_.path() / name;
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }

  // Options of a command line that must be valid.
  GatewayOptions Valid(const std::vector<std::string>& args) {
    absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> parsed = ParseGatewayOptions(args);
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    if (!parsed.ok() || !std::holds_alternative<GatewayOptions>(*parsed)) return {};
    return std::get<GatewayOptions>(*std::move(parsed));
  }

  // The message of a command line that must be refused.
  std::string Refused(const std::vector<std::string>& args) {
    absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> parsed = ParseGatewayOptions(args);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(parsed.status().message());
  }

  // A valid join, with `more` flags after it.
  std::vector<std::string> Join(std::vector<std::string> more = {}) {
    std::vector<std::string> args{
        "--control-plane",      "cp.internal:50051",      "--gateway", "edge",
        "--gateway-token-file", File("token", "TOKEN\n"), "--tls"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  apim::testing::TempDir dir_;
};

TEST_F(GatewayOptionsTest, DefaultsAreTheOnesTheReadmeLists) {
  const GatewayOptions options = Valid({"--config", "snapshot.json"});

  EXPECT_EQ(options.config, "snapshot.json");
  EXPECT_EQ(options.worker.listen, "0.0.0.0:8080");
  EXPECT_EQ(options.worker.admin_listen, "127.0.0.1:9901");
  EXPECT_EQ(options.worker.threads,
            static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  EXPECT_EQ(options.worker.limits.request_header_timeout, std::chrono::seconds(10));
  EXPECT_EQ(options.worker.limits.connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(options.drain_timeout, std::chrono::seconds(10));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_idle, std::chrono::seconds(60));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_interval, std::chrono::seconds(10));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_count, 6);
  EXPECT_EQ(options.worker.cache_max_bytes, size_t{64} << 20);
  EXPECT_EQ(options.worker.limits.max_buffered_body_bytes, size_t{16} << 20);
  EXPECT_EQ(options.worker.buffer_budget_bytes, size_t{256} << 20);
  EXPECT_EQ(options.worker.rate_limit_max_keys, size_t{100'000});
  EXPECT_EQ(options.client.cache_path, "apim-gateway.snapshot");
  EXPECT_EQ(options.client.control_plane, "");
  EXPECT_EQ(options.port_file, "");
  EXPECT_EQ(options.log_level, spdlog::level::info);
  EXPECT_TRUE(options.worker.limits.http2);
  EXPECT_EQ(options.worker.limits.http2_max_concurrent_streams, 256u);
  EXPECT_EQ(options.worker.limits.http2_max_resets_per_second, 100u);
  EXPECT_EQ(options.worker.limits.http2_max_control_frames_per_second, 200u);
  EXPECT_EQ(options.worker.limits.max_request_header_bytes, size_t{32} << 10);
}

TEST_F(GatewayOptionsTest, Http2FlagsSetItsLimitsAndRefuseNonsense) {
  const GatewayOptions options =
      Valid({"--config=s.json", "--no-http2", "--http2-max-concurrent-streams=10",
             "--http2-max-resets-per-second=5", "--http2-max-control-frames-per-second=50",
             "--max-request-header-bytes=65536"});
  EXPECT_FALSE(options.worker.limits.http2);
  EXPECT_EQ(options.worker.limits.http2_max_concurrent_streams, 10u);
  EXPECT_EQ(options.worker.limits.http2_max_resets_per_second, 5u);
  EXPECT_EQ(options.worker.limits.http2_max_control_frames_per_second, 50u);
  EXPECT_EQ(options.worker.limits.max_request_header_bytes, size_t{65536});
  EXPECT_THAT(Refused({"--config=s.json", "--http2-max-concurrent-streams=0"}),
              HasSubstr("--http2-max-concurrent-streams"));
  EXPECT_THAT(Refused({"--config=s.json", "--max-request-header-bytes=10"}),
              HasSubstr("--max-request-header-bytes"));
}

TEST_F(GatewayOptionsTest, FlagsSetTheOptionsInTheirUnits) {
  const GatewayOptions options =
      Valid({"--config=s.json", "--listen=127.0.0.1:0", "--admin-listen=[::1]:9000",
             "--tls-listen=0.0.0.0:8443", "--threads=3", "--request-header-timeout=20",
             "--connect-timeout=2", "--drain-timeout=0.25", "--tcp-keepalive-idle=30",
             "--tcp-keepalive-interval=5", "--tcp-keepalive-count=3", "--port-file=ports",
             "--log-level=warn"});

  EXPECT_EQ(options.worker.listen, "127.0.0.1:0");
  EXPECT_EQ(options.worker.admin_listen, "[::1]:9000");
  EXPECT_EQ(options.worker.tls_listen, "0.0.0.0:8443");
  EXPECT_EQ(options.worker.threads, 3);
  EXPECT_EQ(options.worker.limits.request_header_timeout, std::chrono::seconds(20));
  EXPECT_EQ(options.worker.limits.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(options.drain_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_idle, std::chrono::seconds(30));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_interval, std::chrono::seconds(5));
  EXPECT_EQ(options.worker.limits.tcp_keepalive_count, 3);
  EXPECT_EQ(options.port_file, "ports");
  EXPECT_EQ(options.log_level, spdlog::level::warn);
}

TEST_F(GatewayOptionsTest, JoiningReadsTheTokenFromTheFirstLineOfACrlfFile) {
  const GatewayOptions options =
      Valid({"--control-plane", "cp.internal:50051", "--gateway", "edge", "--gateway-token-file",
             File("token", "TOKEN\r\n"), "--tls"});

  EXPECT_EQ(options.client.control_plane, "cp.internal:50051");
  EXPECT_EQ(options.client.gateway, "edge");
  EXPECT_EQ(options.client.token, "TOKEN");
  EXPECT_EQ(options.config, "");
}

TEST_F(GatewayOptionsTest, JoiningTakesTheTokenFromTheEnvironmentWithoutAFile) {
  setenv("APIM_GATEWAY_TOKEN", "FROM-ENV", 1);
  EXPECT_EQ(Valid({"--control-plane", "127.0.0.1:1", "--gateway", "edge"}).client.token,
            "FROM-ENV");
  // A secret mounted as a variable often ends with a line break: it is not part of the token.
  setenv("APIM_GATEWAY_TOKEN", "FROM-ENV\r\n", 1);
  EXPECT_EQ(Valid({"--control-plane", "127.0.0.1:1", "--gateway", "edge"}).client.token,
            "FROM-ENV");
}

TEST_F(GatewayOptionsTest, TheTokenFileWinsOverTheEnvironment) {
  setenv("APIM_GATEWAY_TOKEN", "FROM-ENV", 1);
  EXPECT_EQ(Valid(Join()).client.token, "TOKEN");
}

TEST_F(GatewayOptionsTest, TheWorkerIdDefaultsToHostAndPid) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_EQ(Valid(Join()).client.worker_id, std::string(host) + "-" + std::to_string(getpid()));
  EXPECT_EQ(Valid(Join({"--worker-id", "w1"})).client.worker_id, "w1");
}

TEST_F(GatewayOptionsTest, TheAdvertisedAddressIsTheListenHostWithTheBoundPort) {
  EXPECT_EQ(AdvertiseAddress(Valid(Join({"--listen", "10.0.0.7:0"})), 41234), "10.0.0.7:41234");
  EXPECT_EQ(AdvertiseAddress(Valid(Join()), 8080), "0.0.0.0:8080");
}

TEST_F(GatewayOptionsTest, AGivenAdvertisedAddressIsKept) {
  const GatewayOptions options = Valid(Join({"--advertise-address", "pod-7.edge:8080"}));
  EXPECT_EQ(AdvertiseAddress(options, 41234), "pod-7.edge:8080");
}

TEST_F(GatewayOptionsTest, HelpListsTheFlagsWithTheirDefaults) {
  absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> parsed =
      ParseGatewayOptions({"--help"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_TRUE(std::holds_alternative<GatewayHelp>(*parsed));
  const std::string& text = std::get<GatewayHelp>(*parsed).text;
  EXPECT_THAT(text, HasSubstr("--gateway-token-file"));
  EXPECT_THAT(text, HasSubstr("=0.0.0.0:8080"));
  EXPECT_THAT(text, HasSubstr("=apim-gateway.snapshot"));
}

TEST_F(GatewayOptionsTest, RefusesNeitherConfigNorControlPlane) {
  EXPECT_EQ(Refused({}),
            "give --config FILE (standalone) or --control-plane HOST:PORT --gateway NAME");
}

TEST_F(GatewayOptionsTest, RefusesConfigTogetherWithControlPlane) {
  EXPECT_EQ(Refused(Join({"--config", "s.json"})), "--config excludes --control-plane");
}

TEST_F(GatewayOptionsTest, RefusesGatewayWithoutControlPlane) {
  EXPECT_EQ(Refused({"--config", "s.json", "--gateway", "edge"}),
            "--gateway requires --control-plane");
}

TEST_F(GatewayOptionsTest, RefusesControlPlaneWithoutGateway) {
  EXPECT_EQ(Refused({"--control-plane", "cp:1", "--gateway-token-file", File("token", "T\n")}),
            "--control-plane: needs --gateway NAME, the gateway to join");
}

TEST_F(GatewayOptionsTest, RefusesControlPlaneWithoutToken) {
  EXPECT_EQ(Refused({"--control-plane", "cp:1", "--gateway", "edge"}),
            "--control-plane: needs the gateway's token in --gateway-token-file FILE or "
            "APIM_GATEWAY_TOKEN (create one with `apimctl gateway token NAME`)");
}

TEST_F(GatewayOptionsTest, RefusesAnEmptyTokenFileNamingIt) {
  const std::string path = File("token", "\r\n");
  EXPECT_EQ(Refused({"--control-plane", "cp:1", "--gateway", "edge", "--gateway-token-file", path}),
            "--gateway-token-file: the first line of " + path + " is empty");
}

TEST_F(GatewayOptionsTest, RefusesAMissingTokenFile) {
  const std::string path = (dir_.path() / "missing").string();
  EXPECT_THAT(
      Refused({"--control-plane", "cp:1", "--gateway", "edge", "--gateway-token-file", path}),
      HasSubstr("--gateway-token-file: File does not exist: " + path));
}

TEST_F(GatewayOptionsTest, RefusesAControlPlaneThatIsNotHostAndPort) {
  for (const char* address :
       {"cp.internal", "cp.internal:", ":50051", "cp:0", "cp:65536", "cp:x"}) {
    EXPECT_EQ(Refused({"--control-plane", address, "--gateway", "edge"}),
              "--control-plane: \"" + std::string(address) +
                  "\" must be HOST:PORT with a port from 1 to 65535");
  }
}

TEST_F(GatewayOptionsTest, RefusesAnAdvertisedAddressThatIsNotHostAndPort) {
  EXPECT_EQ(Refused(Join({"--advertise-address", "10.0.0.7"})),
            "--advertise-address: \"10.0.0.7\" must be HOST:PORT with a port from 1 to 65535");
}

TEST_F(GatewayOptionsTest, RefusesListenAddressesThatAreNotAnIpAndAPort) {
  EXPECT_EQ(Refused({"--config", "s.json", "--listen", "localhost:8080"}),
            "--listen: \"localhost:8080\" must be an IP address and a port, e.g. 127.0.0.1:8080");
  EXPECT_EQ(Refused({"--config", "s.json", "--admin-listen", "127.0.0.1:99999"}),
            "--admin-listen: \"127.0.0.1:99999\" must be an IP address and a port, e.g. "
            "127.0.0.1:8080");
  EXPECT_EQ(Refused({"--config", "s.json", "--listen", "8080"}),
            "--listen: \"8080\" must be HOST:PORT");
  EXPECT_EQ(Refused({"--config", "s.json", "--tls-listen", "localhost:8443"}),
            "--tls-listen: \"localhost:8443\" must be an IP address and a port, e.g. "
            "127.0.0.1:8080");
}

TEST_F(GatewayOptionsTest, RefusesNumbersOutsideTheirRangesNamingTheFlag) {
  const std::vector<std::pair<std::string, std::string>> out_of_range{
      {"--threads", "0"},
      {"--threads", "257"},
      {"--request-header-timeout", "0"},
      {"--connect-timeout", "301"},
      {"--drain-timeout", "-1"},
      {"--tcp-keepalive-idle", "7201"},
      {"--tcp-keepalive-interval", "0"},
      {"--tcp-keepalive-count", "31"},
      {"--max-buffered-body-bytes", "0"},
      {"--buffer-budget-bytes", "0"},
      {"--rate-limit-max-keys", "0"},
  };
  for (const auto& [flag, value] : out_of_range) {
    EXPECT_THAT(Refused({"--config", "s.json", flag, value}), HasSubstr(flag + ": "))
        << flag << " " << value;
  }
}

TEST_F(GatewayOptionsTest, RefusesANumberThatIsNotOne) {
  EXPECT_THAT(Refused({"--config", "s.json", "--threads", "many"}), HasSubstr("--threads"));
}

TEST_F(GatewayOptionsTest, RefusesAnUnknownLogLevel) {
  EXPECT_EQ(Refused({"--config", "s.json", "--log-level", "verbose"}),
            "--log-level: \"verbose\" is not trace, debug, info, warn or error");
}

TEST_F(GatewayOptionsTest, RefusesPlaintextToAControlPlaneOffLoopbackUnlessAllowed) {
  std::vector<std::string> plaintext = Join();
  plaintext.pop_back();  // --tls
  EXPECT_THAT(Refused(plaintext), HasSubstr("refusing plaintext to cp.internal:50051"));
  plaintext.push_back("--allow-insecure");
  EXPECT_FALSE(Valid(plaintext).client.tls.enabled());
  // On loopback plaintext needs no flag.
  EXPECT_FALSE(Valid({"--control-plane", "127.0.0.1:50051", "--gateway", "edge",
                      "--gateway-token-file", File("token", "TOKEN\n")})
                   .client.tls.enabled());
}

TEST_F(GatewayOptionsTest, RefusesTlsFilesThatCannotBeUsed) {
  EXPECT_THAT(Refused(Join({"--ca-file", File("ca.crt", "not a certificate\n")})),
              HasSubstr("--ca-file"));
  EXPECT_THAT(Refused(Join({"--cert-file", File("c.crt", "x")})),
              HasSubstr("--cert-file requires --key-file"));
}

TEST_F(GatewayOptionsTest, RefusesAnUnknownFlag) {
  EXPECT_THAT(Refused({"--config", "s.json", "--listen-port", "8080"}), HasSubstr("--listen-port"));
}

}  // namespace
}  // namespace apim::dataplane
