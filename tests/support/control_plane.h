#pragma once
// Runs the real apim-controlplane binary on an ephemeral loopback port for integration tests,
// with a database in the test's own directory, and hands out authorised gRPC stubs.

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "tests/support/process.h"

namespace apim::testing {

inline constexpr char kTestAdminToken[] = "test-admin-token-0123456789";

class ControlPlane {
 public:
  // `env` is the process environment on top of ours; by default it sets the admin token.
  explicit ControlPlane(std::filesystem::path dir, std::map<std::string, std::string> env = {
                                                       {"APIM_ADMIN_TOKEN", kTestAdminToken}});
  ~ControlPlane();

  // Command-line flags added to the next Start.
  void AddArgs(std::vector<std::string> args) {
    extra_args_.insert(extra_args_.end(), args.begin(), args.end());
  }
  // Starts the process and waits (bounded) until it serves; throws if it does not. Port 0 picks
  // one; a restart can ask for the previous port so clients find it again.
  void Start(uint16_t port = 0);
  uint16_t port() const { return port_; }
  // Sends `signal_number` and waits (bounded) for the exit.
  ExitResult Stop(int signal_number);

  const std::string& address() const { return address_; }
  std::filesystem::path database() const { return dir_ / "apim.db"; }
  ChildProcess& process() { return *process_; }
  // Stubs dial with these (plaintext unless set: a control plane started with TLS needs them).
  void UseCredentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    credentials_ = std::move(credentials);
  }
  std::unique_ptr<v1::Management::Stub> Stub() const;

 private:
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  uint16_t port_ = 0;
  std::shared_ptr<grpc::ChannelCredentials> credentials_ = grpc::InsecureChannelCredentials();
};

// A client context carrying a bearer token and a deadline.
std::unique_ptr<grpc::ClientContext> AuthorizedContext(const std::string& token = kTestAdminToken);

}  // namespace apim::testing
