#include "dataplane/admin/metrics.h"

#include <sstream>

namespace apim::dataplane {
namespace {

// Label values escape backslash, quote and newline, per the text exposition format.
std::string Label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void Metrics::CountRequest(const std::string& api, unsigned status) {
  std::lock_guard lock(mu_);
  ++requests_[{api, status}];
}

void Metrics::CountUpstreamError(const std::string& kind) {
  std::lock_guard lock(mu_);
  ++upstream_errors_[kind];
}

std::string Metrics::RenderPrometheus() const {
  std::ostringstream out;
  auto gauge = [&](const char* name, const char* help, const char* type, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << ' ' << value << '\n';
  };
  {
    std::lock_guard lock(mu_);
    out << "# HELP apim_requests_total Requests answered, by API and status.\n"
           "# TYPE apim_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      out << "apim_requests_total{api=\"" << Label(key.first) << "\",status=\"" << key.second
          << "\"} " << count << '\n';
    }
    out << "# HELP apim_upstream_errors_total Backend failures, by kind.\n"
           "# TYPE apim_upstream_errors_total counter\n";
    for (const auto& [kind, count] : upstream_errors_) {
      out << "apim_upstream_errors_total{kind=\"" << Label(kind) << "\"} " << count << '\n';
    }
  }
  gauge("apim_active_streams", "Open event streams.", "gauge", active_streams.load());
  gauge("apim_active_connections", "Open client connections.", "gauge", active_connections.load());
  gauge("apim_events_relayed_total", "Server-sent events relayed to clients.", "counter",
        events_relayed.load());
  gauge("apim_bytes_to_clients_total", "Response bytes written to clients.", "counter",
        bytes_to_clients.load());
  gauge("apim_bytes_from_clients_total", "Request body bytes read from clients.", "counter",
        bytes_from_clients.load());
  gauge("apim_streams_refused_total", "Streams refused over the tier's concurrent limit.",
        "counter", streams_refused.load());
  gauge("apim_heartbeats_sent_total", "Heartbeat comments written between events.", "counter",
        heartbeats_sent.load());
  gauge("apim_responses_cut_total", "Responses cut at the tier's max duration or idle timeout.",
        "counter", responses_cut.load());
  gauge("apim_draining", "1 while the worker drains before exiting.", "gauge", draining.load());
  gauge("apim_config_version", "Version of the snapshot being served.", "gauge",
        config_version.load());
  gauge("apim_config_from_cache", "1 while serving the cached snapshot from disk.", "gauge",
        config_from_cache.load());
  gauge("apim_control_plane_connected", "1 while the config stream is up.", "gauge",
        control_plane_connected.load());
  gauge("apim_rate_limit_keys", "Counter-key windows held by rate-limit-by-key.", "gauge",
        rate_limit_keys.load());
  gauge("apim_rate_limit_overflow_total",
        "Calls counted in a shared overflow window because the key table was full.", "counter",
        rate_limit_overflow.load());
  gauge("apim_rate_limit_evictions_total", "Expired rate-limit windows dropped.", "counter",
        rate_limit_evictions.load());
  gauge("apim_shared_state_configured",
        "1 when limits are counted on a shared-state server (Redis) across the gateway.", "gauge",
        shared_state_configured.load());
  gauge("apim_shared_state_available",
        "1 while every thread of the worker is connected to the shared-state server.", "gauge",
        shared_state_available.load());
  gauge("apim_shared_state_unavailable_calls_total",
        "Calls the shared-state server could not count: counted locally (fail open) or refused "
        "(fail closed).",
        "counter", shared_state_unavailable_calls.load());
  gauge("apim_buffered_bytes", "Bytes held by buffered request and response bodies.", "gauge",
        buffered_bytes.load());
  out << "# HELP apim_buffer_budget_exhausted_total Bodies the buffer budget had no room for: "
         "requests refused (503), responses streamed instead.\n"
         "# TYPE apim_buffer_budget_exhausted_total counter\n"
         "apim_buffer_budget_exhausted_total{direction=\"request\"} "
      << buffer_budget_exhausted_requests.load()
      << "\napim_buffer_budget_exhausted_total{direction=\"response\"} "
      << buffer_budget_exhausted_responses.load() << '\n';
  gauge("apim_client_overruns_total",
        "Responses ended because the client sent too much while they were relayed.", "counter",
        client_overruns.load());
  gauge("apim_session_failures_total", "Exchanges ended by an unexpected internal error.",
        "counter", session_failures.load());
  const auto handshakes = [&](std::string_view name, std::string_view who, uint64_t full,
                              uint64_t resumed, uint64_t failed) {
    out << "# HELP " << name << " New TLS connections " << who
        << ": full handshakes, resumed sessions, failures.\n# TYPE " << name << " counter\n"
        << name << "{result=\"full\"} " << full << '\n'
        << name << "{result=\"resumed\"} " << resumed << '\n'
        << name << "{result=\"failed\"} " << failed << '\n';
  };
  handshakes("apim_backend_tls_handshakes_total", "to backends", backend_tls_full_handshakes.load(),
             backend_tls_resumed_handshakes.load(), backend_tls_failed_handshakes.load());
  handshakes("apim_client_tls_handshakes_total", "from clients", client_tls_full.load(),
             client_tls_resumed.load(), client_tls_failed.load());
  gauge("apim_http2_connections_total", "Client connections that spoke HTTP/2.", "counter",
        http2_connections.load());
  gauge("apim_http2_streams_total", "Requests received over HTTP/2.", "counter",
        http2_streams.load());
  out << "# HELP apim_http2_abuse_closed_total HTTP/2 connections closed with GOAWAY "
         "ENHANCE_YOUR_CALM: too many stream resets, or a flood of control frames.\n"
         "# TYPE apim_http2_abuse_closed_total counter\n"
         "apim_http2_abuse_closed_total{reason=\"rapid_reset\"} "
      << http2_closed_rapid_reset.load()
      << "\napim_http2_abuse_closed_total{reason=\"control_flood\"} "
      << http2_closed_control_flood.load() << '\n';
  std::lock_guard lock(mu_);
  out << "# HELP apim_certificate_not_after_seconds When the certificate served for a hostname "
         "expires (Unix time).\n# TYPE apim_certificate_not_after_seconds gauge\n";
  for (const auto& [hostname, not_after] : certificate_not_after_) {
    out << "apim_certificate_not_after_seconds{hostname=\"" << Label(hostname) << "\"} "
        << not_after << '\n';
  }
  return out.str();
}

void Metrics::SetCertificateExpiry(std::map<std::string, int64_t> not_after_by_hostname) {
  std::lock_guard lock(mu_);
  certificate_not_after_ = std::move(not_after_by_hostname);
}

}  // namespace apim::dataplane
