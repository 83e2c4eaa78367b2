#pragma once
// A controllable HTTP/1.1 backend for the gateway's integration tests, the demo and benchmarks.
// It serves numbered server-sent events with knobs for the behaviours a gateway must relay
// faithfully (a pause inside an event, silence, an abrupt death, a close-delimited body), plus a
// plain JSON body, an echo of the request and counters that let a test await "the backend saw
// the client go away" without sleeping. Loopback only.
//
// Routes (the last path segment decides, so `/base/events` works like `/events`: a gateway joins
// its backend URL path in front):
//   GET|POST …/events     text/event-stream (a POST body is read and dropped). Query: count,
//                         interval_ms (1000), size,
//                         framing=chunked|close, pause_after + pause_mid_event_ms, idle_after,
//                         die_after [+ die=rst], last_event_id (or the Last-Event-ID header),
//                         bom_split_ms (a UTF-8 BOM opens the body: its first byte after that
//                         long, the other two as long again later, then the events).
//                         Event n: `id: n\ndata: {"seq":n,"ts_ns":<CLOCK_REALTIME>,"pad":"…"}\n\n`
//   GET  …/json?size=B    application/json with Content-Length
//   *    …/echo           {"method","target","headers":{…},"body_bytes":N}
//   *    …/status/<code>  an empty response with that status
//   GET  …/stats          counters; ?wait_closed_by_client=N&timeout_ms=T long-polls (T ≤ 10000)
// The counts in count/pause_after/idle_after/die_after are events sent in this response.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace apim::testing {

struct SseBackendOptions {
  int threads = 1;  // one io_context per thread; connections are spread round-robin
  // No stream (not even a silent one) outlives this, so a forgotten client cannot pin a thread.
  std::chrono::seconds max_stream_duration{3600};
  // HTTPS with this PEM certificate chain and key; with tls_client_ca_file, clients must show a
  // certificate signed by a CA in it (mTLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

struct SseBackendStats {
  uint64_t connections_accepted = 0;
  uint64_t open_streams = 0;
  uint64_t streams_started = 0;
  uint64_t streams_closed_by_client = 0;
  uint64_t events_sent = 0;
  uint64_t tls_handshakes_failed = 0;
  uint64_t tls_resumed = 0;
};

// Owns its threads: Start() spawns them, Stop() (or the destructor) closes the listener and every
// connection and joins them.
class SseBackend {
 public:
  explicit SseBackend(SseBackendOptions options = {});
  ~SseBackend();
  SseBackend(const SseBackend&) = delete;
  SseBackend& operator=(const SseBackend&) = delete;

  // Listens on `listen` ("127.0.0.1:0" picks a free port; loopback addresses only) and serves.
  // Returns the bound port. Call once.
  absl::StatusOr<uint16_t> Start(std::string_view listen);

  // Idempotent; open streams end abruptly.
  void Stop();

  SseBackendStats stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace apim::testing
