#pragma once
// Keep-alive connections to backends, one pool per worker thread so it needs no lock. A
// connection goes back to the pool only after a response that ended cleanly; one that has sat
// idle too long, or that the backend has closed, is dropped instead of reused.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dataplane/net/socket_stream.h"
#include "dataplane/config/route_table.h"

namespace apim::dataplane {

class UpstreamPool {
 public:
  // How a new TLS connection's handshake went (for /metrics).
  enum class Handshake { kNone, kFull, kResumed };
  struct Lease {
    std::unique_ptr<SocketStream> stream;
    bool reused = false;  // A reused connection may have been closed by the backend meanwhile.
    Handshake handshake = Handshake::kNone;
    std::string tls_failure;  // Why the TLS handshake failed, when it did.
  };

  explicit UpstreamPool(boost::asio::any_io_executor executor,
                        std::chrono::seconds max_idle = std::chrono::seconds(30),
                        size_t max_idle_per_backend = 64)
      : executor_(std::move(executor)),
        max_idle_(max_idle),
        max_idle_per_backend_(max_idle_per_backend) {}

  // An idle pooled connection to `backend`, or a new one (unless `fresh_only`), connected (and,
  // for https, its TLS handshake made) within `connect_timeout` each. On failure the error says
  // whether it was resolution, refusal or timeout, and the lease's tls_failure why TLS failed.
  boost::asio::awaitable<std::pair<boost::beast::error_code, Lease>> Acquire(
      const Backend& backend, std::chrono::milliseconds connect_timeout, bool fresh_only = false);

  void Release(const Backend& backend, std::unique_ptr<SocketStream> stream);

 private:
  struct Idle {
    std::unique_ptr<SocketStream> stream;
    std::chrono::steady_clock::time_point since;
  };
  // Connections are shared only between backends with the same address and TLS settings.
  static std::string Key(const Backend& backend) {
    return backend.host + ":" + backend.port + (backend.tls ? "/tls@" : "") +
           (backend.tls ? std::to_string(reinterpret_cast<uintptr_t>(backend.tls_context.get()))
                        : "");
  }

  boost::asio::any_io_executor executor_;
  std::chrono::seconds max_idle_;
  size_t max_idle_per_backend_;
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace apim::dataplane
