// TLS on the control plane's gRPC: apimctl and config push over TLS, client certificates (mTLS)
// accepted and refused, a worker that does not trust the server saying so, plaintext refused off
// loopback, certificates rotated by SIGHUP under connected workers, and a database file that
// only its owner can read. Real processes on loopback; certificates made with the openssl CLI.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
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

// Credentials that trust `ca` and, if given, show `client`.
std::shared_ptr<grpc::ChannelCredentials> Trusting(const TestCa& ca,
                                                   const CertificateFiles* client = nullptr) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadFile(ca.cert());
  if (client != nullptr) {
    options.pem_cert_chain = ReadFile(client->cert);
    options.pem_private_key = ReadFile(client->key);
  }
  return grpc::SslCredentials(options);
}

class GrpcTlsTest : public ::testing::Test {
 protected:
  // Starts the control plane with TLS (`extra` adds flags) and makes gateway "edge" with an API
  // "orders" on the test backend, and its worker token.
  void StartControlPlane(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--tls-cert-file", server_.cert.string(), "--tls-key-file",
                                  server_.key.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    control_plane_.AddArgs(args);
    control_plane_.Start();
    control_plane_.UseCredentials(Trusting(ca_, &admin_client_));
    auto stub = control_plane_.Stub();
    v1::CreateGatewayRequest gateway;
    gateway.mutable_gateway()->set_name("edge");
    gateway.mutable_gateway()->set_tier("standard");
    v1::Gateway created;
    grpc::Status status = stub->CreateGateway(AuthorizedContext().get(), gateway, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
    version_ = CreateApi("orders");
    v1::RotateGatewayTokenRequest rotate;
    rotate.set_name("edge");
    v1::GatewayToken token;
    ASSERT_TRUE(stub->RotateGatewayToken(AuthorizedContext().get(), rotate, &token).ok());
    token_ = token.token();
  }

  // Creates an API on gateway "edge"; returns the config version it makes.
  uint64_t CreateApi(const std::string& name) {
    v1::CreateApiRequest request;
    request.mutable_api()->set_name(name);
    request.mutable_api()->set_path_prefix("/" + name);
    request.mutable_api()->set_backend_url("http://127.0.0.1:" + std::to_string(backend_.port()));
    request.mutable_api()->add_gateways("edge");
    v1::Api api;
    grpc::Status status =
        control_plane_.Stub()->CreateApi(AuthorizedContext().get(), request, &api);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return std::stoull(api.etag());
  }

  // apimctl with these connection flags, listing gateways.
  CommandResult ListGateways(std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--server", control_plane_.address()});
    flags.insert(flags.end(), {"gateway", "list"});
    return RunCommand(APIMCTL_BIN, flags, {{"APIM_TOKEN", kTestAdminToken}});
  }

  std::unique_ptr<GatewayProcess> Join(const std::string& worker_id,
                                       std::vector<std::string> flags) {
    return GatewayProcess::Join(dir_.path(), control_plane_.address(), "edge", token_, worker_id,
                                std::move(flags));
  }

  static bool Applied(GatewayProcess& worker, uint64_t version) {
    return WaitForFileContent(worker.process().stderr_path(),
                              "applied config version " + std::to_string(version) + " from", 20s);
  }

  TempDir dir_;
  BackendProcess backend_{dir_.path()};
  TestCa ca_{dir_.path(), "main"};
  CertificateFiles server_ = ca_.Issue("controlplane");
  // Shown by the test's own stubs, and ignored unless the control plane asks for one.
  CertificateFiles admin_client_ = ca_.Issue("admin");
  ControlPlane control_plane_{dir_.path()};
  std::string token_;
  uint64_t version_ = 0;
};

TEST_F(GrpcTlsTest, ApimctlAndConfigPushWorkOverTls) {
  StartControlPlane();
  EXPECT_NE(control_plane_.process().Stdout().find(
                "(port " + std::to_string(control_plane_.port()) + ", TLS)"),
            std::string::npos)
      << control_plane_.process().Stdout();

  CommandResult listed = ListGateways({"--ca-file", ca_.cert().string()});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("edge"), std::string::npos) << listed.out;
  // Plaintext to the TLS port does not get through.
  EXPECT_EQ(ListGateways({}).exit_code, static_cast<int>(grpc::StatusCode::UNAVAILABLE));

  auto worker = Join("w1", {"--ca-file", ca_.cert().string()});
  ASSERT_TRUE(Applied(*worker, version_)) << worker->process().Stderr();
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json?size=8").status, 200);
}

TEST_F(GrpcTlsTest, MutualTlsAcceptsCertificatesOfTheClientCaAndRefusesOthers) {
  TestCa clients(dir_.path(), "clients");
  CertificateFiles operator_cert = clients.Issue("operator");
  CertificateFiles worker_cert = clients.Issue("worker");
  TestCa stranger_ca(dir_.path(), "stranger");
  CertificateFiles stranger = stranger_ca.Issue("stranger");
  admin_client_ = operator_cert;
  StartControlPlane({"--client-ca-file", clients.cert().string()});

  CommandResult accepted =
      ListGateways({"--ca-file", ca_.cert().string(), "--cert-file", operator_cert.cert.string(),
                    "--key-file", operator_cert.key.string()});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.err;

  CommandResult without = ListGateways({"--ca-file", ca_.cert().string()});
  EXPECT_EQ(without.exit_code, static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(without.err.find("requires a client certificate"), std::string::npos) << without.err;

  CommandResult refused =
      ListGateways({"--ca-file", ca_.cert().string(), "--cert-file", stranger.cert.string(),
                    "--key-file", stranger.key.string()});
  EXPECT_EQ(refused.exit_code, static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(refused.err.find("refused the client certificate"), std::string::npos) << refused.err;

  auto worker = Join("w1", {"--ca-file", ca_.cert().string(), "--cert-file",
                            worker_cert.cert.string(), "--key-file", worker_cert.key.string()});
  ASSERT_TRUE(Applied(*worker, version_)) << worker->process().Stderr();
}

TEST_F(GrpcTlsTest, AClientThatDoesNotTrustTheServerSaysSo) {
  StartControlPlane();
  TestCa other(dir_.path(), "other");

  CommandResult listed = ListGateways({"--ca-file", other.cert().string()});
  EXPECT_EQ(listed.exit_code, static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_NE(listed.err.find("does not trust the control plane's certificate"), std::string::npos)
      << listed.err;

  auto worker = Join("w1", {"--ca-file", other.cert().string()});
  EXPECT_TRUE(WaitForFileContent(worker->process().stderr_path(),
                                 "does not trust the control plane's certificate", 20s))
      << worker->process().Stderr();
  // It keeps serving (it has no configuration yet) and keeps trying.
  EXPECT_EQ(HttpRequest(worker->port(), "GET", "/orders/json").status, 404);
}

TEST_F(GrpcTlsTest, PlaintextOffLoopbackIsRefusedUnlessAllowed) {
  // 192.0.2.0/24 is reserved for documentation: nothing is sent there, the refusal comes first.
  CommandResult apimctl =
      RunCommand(APIMCTL_BIN, {"--server", "192.0.2.1:50051", "gateway", "list"},
                 {{"APIM_TOKEN", kTestAdminToken}});
  EXPECT_EQ(apimctl.exit_code, 64);
  EXPECT_NE(apimctl.err.find("refusing plaintext to 192.0.2.1:50051"), std::string::npos)
      << apimctl.err;

  CommandResult worker = RunCommand(
      APIM_GATEWAY_BIN,
      {"--control-plane", "192.0.2.1:50051", "--gateway", "edge", "--listen", "127.0.0.1:0"},
      {{"APIM_GATEWAY_TOKEN", "some-token"}});
  EXPECT_EQ(worker.exit_code, 64);
  EXPECT_NE(worker.err.find("refusing plaintext to 192.0.2.1:50051"), std::string::npos)
      << worker.err;

  // The refusal comes before the port is bound.
  CommandResult control_plane =
      RunCommand(APIM_CONTROLPLANE_BIN,
                 {"--listen", "0.0.0.0:0", "--db", (dir_.path() / "refused.db").string()},
                 {{"APIM_ADMIN_TOKEN", kTestAdminToken}});
  EXPECT_EQ(control_plane.exit_code, 64);
  EXPECT_NE(control_plane.out.find("refusing to serve plaintext gRPC on 0.0.0.0:0"),
            std::string::npos)
      << control_plane.out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "refused.db"));
}

TEST_F(GrpcTlsTest, SighupRotatesTheCertificateWithoutDroppingConnectedWorkers) {
  // The control plane reads its certificate from files the test replaces.
  const std::filesystem::path cert = dir_.path() / "served.crt";
  const std::filesystem::path key = dir_.path() / "served.key";
  std::filesystem::copy_file(server_.cert, cert);
  std::filesystem::copy_file(server_.key, key);
  server_ = {cert, key};
  TestCa next(dir_.path(), "next");
  CertificateFiles rotated = next.Issue("controlplane");
  const std::filesystem::path both = dir_.path() / "both-cas.crt";
  std::ofstream(both) << ReadFile(ca_.cert()) << ReadFile(next.cert());
  StartControlPlane();
  auto worker = Join("w1", {"--ca-file", both.string()});
  ASSERT_TRUE(Applied(*worker, version_)) << worker->process().Stderr();

  std::filesystem::copy_file(rotated.cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(rotated.key, key, std::filesystem::copy_options::overwrite_existing);
  control_plane_.process().Signal(SIGHUP);
  ASSERT_TRUE(WaitForFileContent(control_plane_.process().stdout_path(), "TLS files reloaded", 10s))
      << control_plane_.process().Stdout();
  // New handshakes get the new certificate within a second or so (gRPC looks at the staged files
  // every second; there is no event to await).
  EXPECT_TRUE(PollUntil(
      [&] {
        return ListGateways({"--ca-file", next.cert().string()}).exit_code == 0;
      },
      10s));
  EXPECT_EQ(ListGateways({"--ca-file", ca_.cert().string()}).exit_code,
            static_cast<int>(grpc::StatusCode::UNAVAILABLE));

  // The worker's stream was never dropped: a change reaches it on the same stream.
  control_plane_.UseCredentials(Trusting(next, &admin_client_));
  const uint64_t version = CreateApi("after");
  ASSERT_TRUE(Applied(*worker, version)) << worker->process().Stderr();
  EXPECT_EQ(worker->process().Stderr().find("config stream to"), std::string::npos)
      << worker->process().Stderr();
}

TEST_F(GrpcTlsTest, TheDatabaseIsReadableByItsOwnerOnly) {
  StartControlPlane();
  struct stat status {};
  ASSERT_EQ(stat(control_plane_.database().c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  control_plane_.Stop(SIGTERM);

  // One made readable by others is tightened at the next start, and the log says so.
  ASSERT_EQ(chmod(control_plane_.database().c_str(), 0644), 0);
  control_plane_.Start();
  ASSERT_EQ(stat(control_plane_.database().c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  EXPECT_NE(control_plane_.process().Stdout().find("could be read by others"), std::string::npos)
      << control_plane_.process().Stdout();
}

// The control plane stages its key where gRPC re-reads it: removed on a clean exit, and by the
// next control plane to start when one was killed outright.
TEST_F(GrpcTlsTest, AKilledControlPlanesStagedKeyIsRemovedByTheNextToStart) {
  const std::filesystem::path temp = dir_.path() / "tmp";
  std::filesystem::create_directories(temp);
  ControlPlane control_plane(dir_.path() / "killed",
                             {{"APIM_ADMIN_TOKEN", kTestAdminToken}, {"TMPDIR", temp.string()}});
  std::filesystem::create_directories(dir_.path() / "killed");
  control_plane.AddArgs(
      {"--tls-cert-file", server_.cert.string(), "--tls-key-file", server_.key.string()});
  const auto staged = [&] {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(temp)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  };
  control_plane.Start();
  const std::string first_prefix =
      "apim-controlplane-tls-" + std::to_string(control_plane.process().pid()) + "-";
  std::vector<std::string> names = staged();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_TRUE(names[0].starts_with(first_prefix)) << names[0];
  EXPECT_TRUE(std::filesystem::exists(temp / names[0] / "current" / "key.pem"));
  const std::string killed = names[0];

  control_plane.Stop(SIGKILL);
  EXPECT_TRUE(std::filesystem::exists(temp / killed)) << "SIGKILL cannot clean up";
  control_plane.Start();
  names = staged();
  ASSERT_EQ(names.size(), 1u) << "the killed one's copy of the key is still there";
  EXPECT_NE(names[0], killed);

  control_plane.Stop(SIGTERM);
  EXPECT_TRUE(staged().empty()) << "a clean exit removes its own";
}

}  // namespace
}  // namespace apim::testing
