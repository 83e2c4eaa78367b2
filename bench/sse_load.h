#pragma once
// The load generator behind `sse-load`: opens N concurrent server-sent-event streams to one URL,
// spread over T threads (one io_context each, one coroutine per stream), keeps them open for the
// run's duration and measures time-to-first-event, per-event latency (receive time minus the
// `ts_ns` the backend stamped into the event's data, both CLOCK_REALTIME on this machine),
// throughput and failures. Over HTTP/1.1 every stream is a connection of its own; with `h2` the
// streams are multiplexed over a few HTTP/2 connections (bench/sse_load_h2.h). Loopback targets
// only: it is a bench tool, not a way to load someone else's server.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace apim::bench {

// Where the streams go: parsed from an http:// or https:// URL whose host is in 127.0.0.0/8 or
// "localhost".
struct LoopbackUrl {
  bool tls = false;     // https://
  std::string address;  // IPv4 literal to connect to ("localhost" becomes 127.0.0.1)
  std::string host;     // as written in the URL: the name a TLS certificate must match
  uint16_t port = 80;
  std::string host_header;  // host[:port] as written in the URL
  std::string target;       // path and query
};

// Refuses anything but http or https to a loopback host, with a message that says why.
absl::StatusOr<LoopbackUrl> ParseLoopbackUrl(std::string_view url);

struct LoadOptions {
  std::string url;
  int streams = 100;
  double duration_s = 10;   // at most kMaxDurationSeconds
  double connect_rate = 0;  // new streams per second during ramp-up; 0 opens all at once
  int threads = 2;
  std::string label;
  // https:// only: the CA certificate(s) the server's chain is verified against (PEM); empty
  // means the system's bundle.
  std::string ca_file;
  // https:// only: each thread offers the server the latest session it was given, as a proxy's
  // pool does; otherwise every stream makes a full handshake, as that many new clients would.
  bool tls_resume = false;
  // HTTP/2: the streams spread round-robin over `connections` connections (at most one per
  // stream), each opened when its first stream is due; https:// negotiates h2 by ALPN (a server
  // that does not select it is an error), http:// speaks h2c with prior knowledge.
  bool h2 = false;
  int connections = 20;
};

inline constexpr double kMaxDurationSeconds = 600;

// Microsecond percentiles of one measurement (nearest rank).
struct Distribution {
  uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

struct LoadErrors {
  uint64_t connect = 0;       // TCP connect failed
  uint64_t http_status = 0;   // a status other than 200
  uint64_t content_type = 0;  // 200, but not text/event-stream
  uint64_t early_close = 0;   // the stream broke before the run ended (reset, EOF mid-body)
  uint64_t no_response = 0;   // connected, but no response head before the run ended
  uint64_t other = 0;         // request write failed, unparseable response or event stream
  std::string first;          // the first error seen, for the reader of the report
  uint64_t total() const {
    return connect + http_status + content_type + early_close + no_response + other;
  }
};

struct LoadReport {
  LoadOptions options;
  double elapsed_s = 0;
  uint64_t connected =
      0;  // streams whose TCP connect succeeded (h2: sent on a connection that did)
  uint64_t streams_with_events = 0;  // streams that received at least one event
  uint64_t finished = 0;             // streams whose body ended normally before the run did
  uint64_t open_at_end = 0;          // streams still open when the run ended (the usual case)
  uint64_t not_started = 0;          // ramp-up too slow for the duration
  uint64_t events = 0;
  uint64_t events_without_ts = 0;  // events whose data had no ts_ns (no latency sample)
  uint64_t tls_full_handshakes = 0;
  uint64_t tls_resumed_handshakes = 0;
  // h2 only: connections on which the server's SETTINGS arrived (it speaks HTTP/2), and the
  // lowest SETTINGS_MAX_CONCURRENT_STREAMS a server announced (0: none did, so no limit); streams
  // beyond it wait in the client's queue until others close.
  uint64_t h2_connections = 0;
  uint32_t h2_peer_max_concurrent_streams = 0;
  double events_per_s = 0;
  Distribution connect_us;  // one sample per TCP connection
  // Connect start to first event; h2: from when the stream was due (its connection's connect
  // start for the first stream of each connection).
  Distribution ttfe_us;
  Distribution latency_us;
  // Only events received once every stream was open (a second after the ramp-up ended): the
  // relay alone, without the cost of accepting and connecting new streams at the same time.
  Distribution steady_latency_us;
  LoadErrors errors;
};

// Runs the load to completion (bounded by options.duration_s plus a few seconds of grace).
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options);

std::string FormatReportText(const LoadReport& report);
std::string FormatReportJson(const LoadReport& report);

}  // namespace apim::bench
