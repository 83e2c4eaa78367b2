#pragma once
// What serving a client connection needs from its worker thread: the limits and the shared state
// (snapshots, metrics, pools, counters) every exchange uses.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <unordered_set>

#include "dataplane/admin/metrics.h"
#include "dataplane/backend/upstream_pool.h"
#include "dataplane/config/snapshot_store.h"
#include "dataplane/exchange/buffer_budget.h"
#include "dataplane/policy/policy_runtime.h"
#include "dataplane/policy/response_cache.h"
#include "dataplane/relay/stream_clock.h"
#include "dataplane/shared_state/shared_counters.h"

namespace apim::dataplane {
class Http2Connection;
}

namespace apim::dataplane {

struct ProxyLimits {
  size_t max_request_header_bytes = 32 * 1024;
  // Once the first byte of a request arrives, its headers must be complete within this time
  // (slowloris defence). Between requests a connection may idle for idle_timeout.
  std::chrono::seconds request_header_timeout{10};
  std::chrono::seconds idle_timeout{240};
  std::chrono::seconds connect_timeout{5};
  size_t max_response_header_bytes = 64 * 1024;
  // buffer-response and buffer-request-body hold at most this much of one body; larger bodies
  // are refused (a request whose Content-Length says so, before its body is read).
  size_t max_buffered_body_bytes = 16 * 1024 * 1024;
  // TCP keepalive on client and backend sockets, so a peer that vanished is noticed.
  std::chrono::seconds tcp_keepalive_idle{60};
  std::chrono::seconds tcp_keepalive_interval{10};
  int tcp_keepalive_count = 6;
  // HTTP/2 to clients: ALPN h2 on the TLS listener, prior knowledge (h2c) on the plaintext one.
  bool http2 = true;
  uint32_t http2_max_concurrent_streams = 256;
  // Beyond these rates per connection (with twice as much as a burst) the connection is closed
  // with GOAWAY ENHANCE_YOUR_CALM: streams reset, by the client or for its errors (rapid reset,
  // CVE-2023-44487), and PING, SETTINGS, PRIORITY and empty DATA frames (floods).
  uint32_t http2_max_resets_per_second = 100;
  uint32_t http2_max_control_frames_per_second = 200;
};

// What a session needs from its worker thread. Everything here outlives the sessions.
struct SessionContext {
  const SnapshotStore& snapshots;
  Metrics& metrics;
  UpstreamPool& pool;
  const ProxyLimits& limits;
  // This thread's relays in progress, so a drain can end their streams.
  std::unordered_set<StreamClock*>& open_relays;
  // This thread's HTTP/2 connections, so a drain can send them GOAWAY.
  std::unordered_set<Http2Connection*>& http2_connections;
  // Set when the worker drains: connections close after their current exchange.
  const std::atomic<bool>& draining;
  // Shared by the worker's threads.
  RateLimiter& rate_limiter;
  ResponseCache& cache;
  SubscriptionStreams& subscription_streams;
  BufferBudget& buffer_budget;
  // This thread's: counts rate limits on the gateway's shared-state server when it has one.
  SharedCounters& shared_counters;
};

}  // namespace apim::dataplane
