#pragma once
// A real redis-server (Debian's) for the shared-state tests, on a free loopback port, with no
// persistence: plaintext, or TLS only (as managed Redis services are), with or without a password.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace apim::testing {

struct RedisOptions {
  std::string password;  // requirepass; empty: none.
  // TLS only: the server's certificate and key (e.g. from TestCa::Issue).
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
};

class RedisServer {
 public:
  // Starts it and returns once it accepts connections; throws (with its log) if it does not
  // within 10 s.
  RedisServer(std::filesystem::path dir, RedisOptions options = {});
  uint16_t port() const { return port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // redis://127.0.0.1:PORT, or rediss:// with TLS.
  std::string url() const;

  // SIGKILL, as a crash; then Start() brings it back on the same port (empty: it kept no data).
  void Kill();
  void Start();

  // Runs redis-cli with `args` against it; its stdout, trimmed. Throws if redis-cli fails.
  std::string Cli(const std::vector<std::string>& args) const;

 private:
  std::filesystem::path dir_;
  RedisOptions options_;
  uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace apim::testing
