#pragma once
// The worker's threads: one io_context per thread, each with its own SO_REUSEPORT listener on the
// proxy port and its own upstream pool (shared-nothing, like nginx workers), plus the admin
// listener on the first thread.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/admin/metrics.h"
#include "dataplane/config/snapshot_store.h"
#include "dataplane/exchange/session_context.h"

namespace apim::dataplane {

struct WorkerOptions {
  std::string listen = "0.0.0.0:8080";
  std::string admin_listen = "127.0.0.1:9901";
  std::string tls_listen;  // Empty: no TLS listener.
  int threads = 1;
  size_t cache_max_bytes = 64 * 1024 * 1024;
  size_t rate_limit_max_keys = RateLimiter::kDefaultMaxKeys;
  size_t buffer_budget_bytes = BufferBudget::kDefaultBytes;
  ProxyLimits limits;
  SharedStateOptions shared_state;
};

// "host:port" or "[v6]:port" as an endpoint.
absl::StatusOr<boost::asio::ip::tcp::endpoint> ParseEndpoint(const std::string& text);

class Worker {
 public:
  Worker(WorkerOptions options, SnapshotStore& snapshots, Metrics& metrics);
  ~Worker();

  // Binds every listener (port 0 picks one port, shared by all threads).
  absl::Status Bind();
  uint16_t proxy_port() const { return proxy_port_; }
  uint16_t admin_port() const { return admin_port_; }
  uint16_t tls_port() const { return tls_port_; }  // 0 without --tls-listen

  // The first thread's context, for signal handling and other control work.
  boost::asio::io_context& control_context();

  // Serves on all threads until Stop(); the calling thread is the first one.
  void Run();
  // Stops accepting and ends every thread at once. Safe from any thread.
  void Stop();
  // Graceful shutdown: stops accepting, reports not ready, lets ordinary requests finish, ends
  // event streams at an event boundary once `timeout` has passed (so clients reconnect to
  // another worker), and stops when no connection is left or shortly after the timeout.
  // Call on the control context.
  void Drain(std::chrono::milliseconds timeout);

 private:
  struct Thread;
  WorkerOptions options_;
  SnapshotStore& snapshots_;
  Metrics& metrics_;
  RateLimiter rate_limiter_;
  SubscriptionStreams subscription_streams_;
  ResponseCache cache_;
  BufferBudget buffer_budget_;
  SharedStateStatus shared_state_status_;
  std::vector<std::unique_ptr<Thread>> threads_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> admin_acceptor_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<boost::asio::steady_timer> drain_timer_;
  uint16_t proxy_port_ = 0;
  uint16_t admin_port_ = 0;
  uint16_t tls_port_ = 0;
};

}  // namespace apim::dataplane
