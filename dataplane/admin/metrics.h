#pragma once
// The worker's counters, rendered in the Prometheus text format on the admin listener. Counters
// touched per event are plain atomics; per-request counts by API and status take a short lock.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace apim::dataplane {

class Metrics {
 public:
  void CountRequest(const std::string& api, unsigned status);
  void CountUpstreamError(const std::string& kind);
  std::string RenderPrometheus() const;
  // The not-after time (Unix seconds) of the certificate served for each hostname.
  void SetCertificateExpiry(std::map<std::string, int64_t> not_after_by_hostname);

  std::atomic<int64_t> active_streams{0};
  std::atomic<int64_t> active_connections{0};
  std::atomic<uint64_t> events_relayed{0};
  std::atomic<uint64_t> bytes_to_clients{0};
  std::atomic<uint64_t> bytes_from_clients{0};
  std::atomic<uint64_t> streams_refused{0};  // Over the tier's max concurrent streams.
  std::atomic<uint64_t> heartbeats_sent{0};
  std::atomic<uint64_t> responses_cut{0};  // Max response duration or idle timeout.
  std::atomic<int> draining{0};
  std::atomic<uint64_t> config_version{0};
  std::atomic<int> config_from_cache{0};  // Serving the on-disk snapshot, not a pushed one.
  std::atomic<int> control_plane_connected{0};
  // Bounds that act on what clients send (each also logs when it starts and stops acting).
  std::atomic<int64_t> rate_limit_keys{0};        // Counter-key windows held.
  std::atomic<uint64_t> rate_limit_overflow{0};   // Calls counted in a shared overflow window.
  std::atomic<uint64_t> rate_limit_evictions{0};  // Expired windows dropped.
  std::atomic<int> shared_state_configured{0};
  std::atomic<int> shared_state_available{0};
  std::atomic<uint64_t> shared_state_unavailable_calls{0};
  std::atomic<int64_t> buffered_bytes{0};  // Held by buffered bodies, worker-wide.
  std::atomic<uint64_t> buffer_budget_exhausted_requests{0};   // Refused with 503.
  std::atomic<uint64_t> buffer_budget_exhausted_responses{0};  // Streamed instead.
  std::atomic<uint64_t> client_overruns{0};   // Relays ended: the client sent too much meanwhile.
  std::atomic<uint64_t> session_failures{0};  // Exchanges ended by an unexpected error.
  // New TLS connections to backends: a full handshake, a resumed session, or a failure.
  std::atomic<uint64_t> backend_tls_full_handshakes{0};
  std::atomic<uint64_t> backend_tls_resumed_handshakes{0};
  std::atomic<uint64_t> backend_tls_failed_handshakes{0};
  // The same for clients of the TLS listener.
  std::atomic<uint64_t> client_tls_full{0};
  std::atomic<uint64_t> client_tls_resumed{0};
  std::atomic<uint64_t> client_tls_failed{0};
  std::atomic<uint64_t> http2_connections{0};  // Client connections that spoke HTTP/2.
  std::atomic<uint64_t> http2_streams{0};      // Requests received over HTTP/2.
  // HTTP/2 connections closed with GOAWAY ENHANCE_YOUR_CALM.
  std::atomic<uint64_t> http2_closed_rapid_reset{0};
  std::atomic<uint64_t> http2_closed_control_flood{0};

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, unsigned>, uint64_t> requests_;  // (api, status) -> count
  std::map<std::string, uint64_t> upstream_errors_;                // kind -> count
  std::map<std::string, int64_t> certificate_not_after_;           // hostname -> Unix seconds
};

}  // namespace apim::dataplane
