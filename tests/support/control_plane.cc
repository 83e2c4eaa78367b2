#include "tests/support/control_plane.h"

#include <signal.h>

#include <chrono>
#include <stdexcept>

namespace apim::testing {

ControlPlane::ControlPlane(std::filesystem::path dir, std::map<std::string, std::string> env)
    : dir_(std::move(dir)), env_(std::move(env)) {}

ControlPlane::~ControlPlane() {
  if (process_) Stop(SIGKILL);
}

void ControlPlane::Start(uint16_t port) {
  const std::filesystem::path port_file = dir_ / "port";
  std::filesystem::remove(port_file);
  std::vector<std::string> args{"--listen",    "127.0.0.1:" + std::to_string(port),
                                "--db",        database().string(),
                                "--port-file", port_file.string()};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<ChildProcess>(APIM_CONTROLPLANE_BIN, args, dir_, env_);
  if (!WaitForFile(port_file, std::chrono::seconds(20))) {
    throw std::runtime_error("apim-controlplane did not start; stderr:\n" + process_->Stderr());
  }
  port_ = static_cast<uint16_t>(std::stoi(ReadFile(port_file)));
  address_ = "127.0.0.1:" + std::to_string(port_);
}

ExitResult ControlPlane::Stop(int signal_number) {
  if (!process_) return ExitResult{};
  process_->Signal(signal_number);
  ExitResult result = process_->WaitForExit(std::chrono::seconds(15));
  process_.reset();
  return result;
}

std::unique_ptr<v1::Management::Stub> ControlPlane::Stub() const {
  return v1::Management::NewStub(grpc::CreateChannel(address_, credentials_));
}

std::unique_ptr<grpc::ClientContext> AuthorizedContext(const std::string& token) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return context;
}

}  // namespace apim::testing
