#pragma once
// What one sse-load thread keeps while it runs, whichever protocol carries its streams: the
// results it records (merged after the threads are joined, so nothing is shared), the recorder
// that turns one stream's body into those results, and, with --tls-resume, the latest TLS session
// its server gave it. Internal to sse-load (bench/sse_load.cc and bench/sse_load_h2.cc).

#include <openssl/ssl.h>

#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sse_event_parser.h"
#include "bench/sse_load.h"

namespace apim::bench {

using LoadClock = std::chrono::steady_clock;

struct ThreadResults {
  std::vector<int64_t> connect_ns;  // one sample per TCP connection
  std::vector<int64_t> ttfe_ns;
  std::vector<int64_t> latency_ns;
  std::vector<int64_t> steady_latency_ns;  // the part of latency_ns received in steady state
  uint64_t connected = 0;
  uint64_t streams_with_events = 0;
  uint64_t finished = 0;
  uint64_t open_at_end = 0;
  uint64_t not_started = 0;
  uint64_t events = 0;
  uint64_t events_without_ts = 0;
  uint64_t tls_full_handshakes = 0;
  uint64_t tls_resumed_handshakes = 0;
  uint64_t h2_connections = 0;
  uint32_t h2_peer_max_concurrent_streams = 0;  // the lowest announced; 0: none announced
  LoadErrors errors;

  // Counts one stream under `counter`; the first message of the thread is kept for the report.
  void Fail(uint64_t LoadErrors::*counter, std::string_view what,
            const boost::system::error_code& ec = {});
};

// One stream's body: parses its events and records, in `out`, each event's latency (receive time
// minus the `ts_ns` in its data) and the stream's time to first event, counted from `start`.
class StreamEventRecorder {
 public:
  StreamEventRecorder(LoadClock::time_point start, LoadClock::time_point steady_from,
                      ThreadResults& out);

  // `piece` of the body arrived at `received_at` (steady clock), `received_at_ns` (realtime).
  // Returns false, having counted the error, once an event exceeds the parser's size limit; the
  // stream is then of no further use.
  bool Feed(std::string_view piece, LoadClock::time_point received_at, int64_t received_at_ns);

 private:
  void Record(const SseEvent& event);

  LoadClock::time_point start_;
  LoadClock::time_point steady_from_;
  ThreadResults& out_;
  SseEventParser parser_;
  bool first_event_ = true;
  LoadClock::time_point received_at_;
  int64_t received_at_ns_ = 0;
};

// CLOCK_REALTIME in nanoseconds, the clock the backend stamps `ts_ns` with.
int64_t RealtimeNs();

// Whether a Content-Type names text/event-stream (parameters and case ignored).
bool IsEventStream(std::string_view content_type);

// --tls-resume: each thread runs its own io_context, so a context's new-session callback always
// runs on the thread that later offers the session.
int KeepLatestSession(SSL* ssl, SSL_SESSION* session);  // SSL_CTX_sess_set_new_cb
SSL_SESSION* LatestSession();                           // this thread's, or null
void ForgetLatestSession();

}  // namespace apim::bench
