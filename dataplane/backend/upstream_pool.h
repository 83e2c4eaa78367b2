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

#include "dataplane/config/route_table.h"

namespace apim::dataplane {

class UpstreamPool {
 public:
  struct Lease {
    std::unique_ptr<boost::asio::ip::tcp::socket> stream;
    bool reused = false;  // A reused connection may have been closed by the backend meanwhile.
  };

  explicit UpstreamPool(boost::asio::any_io_executor executor,
                        std::chrono::seconds max_idle = std::chrono::seconds(30),
                        size_t max_idle_per_backend = 64)
      : executor_(std::move(executor)),
        max_idle_(max_idle),
        max_idle_per_backend_(max_idle_per_backend) {}

  // An idle pooled connection to `backend`, or a new one (unless `fresh_only`), connected within
  // `connect_timeout`. On failure the error says whether it was resolution, refusal or timeout.
  boost::asio::awaitable<std::pair<boost::beast::error_code, Lease>> Acquire(
      const Backend& backend, std::chrono::milliseconds connect_timeout, bool fresh_only = false);

  void Release(const Backend& backend, std::unique_ptr<boost::asio::ip::tcp::socket> stream);

 private:
  struct Idle {
    std::unique_ptr<boost::asio::ip::tcp::socket> stream;
    std::chrono::steady_clock::time_point since;
  };
  static std::string Key(const Backend& backend) { return backend.host + ":" + backend.port; }

  boost::asio::any_io_executor executor_;
  std::chrono::seconds max_idle_;
  size_t max_idle_per_backend_;
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace apim::dataplane
