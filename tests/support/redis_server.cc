#include "tests/support/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace apim::testing {
namespace {

// A port nothing listens on now. redis-server cannot pick one itself (its port 0 turns TCP off),
// so another process could take it in between: Start() retries on a new one then.
uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

bool Tls(const RedisOptions& options) { return !options.tls_cert.empty(); }

}  // namespace

RedisServer::RedisServer(std::filesystem::path dir, RedisOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  for (int attempt = 0; attempt < 3 && process_ == nullptr; ++attempt) {
    port_ = FreeLoopbackPort();
    try {
      Start();
    } catch (const std::exception&) {
      if (attempt == 2) throw;
    }
  }
}

std::string RedisServer::url() const {
  return (Tls(options_) ? "rediss://127.0.0.1:" : "redis://127.0.0.1:") + std::to_string(port_);
}

void RedisServer::Start() {
  const std::string port = std::to_string(port_);
  std::vector<std::string> args{"--bind",           "127.0.0.1", "--save", "",
                                "--appendonly",     "no",        "--dir",  dir_.string(),
                                "--protected-mode", "no"};
  if (Tls(options_)) {
    args.insert(args.end(),
                {"--port", "0", "--tls-port", port, "--tls-cert-file", options_.tls_cert.string(),
                 "--tls-key-file", options_.tls_key.string(), "--tls-auth-clients", "no"});
  } else {
    args.insert(args.end(), {"--port", port});
  }
  if (!options_.password.empty()) args.insert(args.end(), {"--requirepass", options_.password});
  // Each start logs to a file of its own, so waiting for "Ready" sees this start's line.
  process_.reset();
  process_ = std::make_unique<ChildProcess>("/usr/bin/redis-server", args, dir_);
  if (!WaitForFileContent(process_->stdout_path(), "Ready to accept connections",
                          std::chrono::seconds(10))) {
    const std::string log = process_->Stdout();
    process_.reset();
    throw std::runtime_error("redis-server did not start on port " + port + ":\n" + log);
  }
}

void RedisServer::Kill() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->WaitForExit(std::chrono::seconds(10));
}

std::string RedisServer::Cli(const std::vector<std::string>& args) const {
  std::vector<std::string> full{"-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (!options_.password.empty())
    full.insert(full.end(), {"--no-auth-warning", "-a", options_.password});
  if (Tls(options_)) full.insert(full.end(), {"--tls", "--insecure"});
  full.insert(full.end(), args.begin(), args.end());
  CommandResult result = RunCommand("/usr/bin/redis-cli", full, {}, std::chrono::seconds(10));
  if (result.exit_code != 0) {
    throw std::runtime_error("redis-cli failed: " + result.err + result.out);
  }
  while (!result.out.empty() && (result.out.back() == '\n' || result.out.back() == '\r')) {
    result.out.pop_back();
  }
  return result.out;
}

}  // namespace apim::testing
