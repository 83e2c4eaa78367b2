#include "bench/sse_load.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "bench/sse_load_h2.h"
#include "bench/sse_load_thread.h"

namespace apim::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using Clock = LoadClock;
using namespace std::chrono_literals;

// A stream failing is a measurement, not an exception.
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kGrace = 5s;   // past the deadline, a thread stops waiting for its streams
constexpr auto kSettle = 1s;  // after the last stream is opened, before steady state begins
constexpr int kMaxStreams = 200'000;
constexpr uint64_t kMaxReadsPerStream = uint64_t{1} << 40;
constexpr int kMaxThreads = 64;

// Reads the body of an event stream until it ends or the run does, recording every event.
template <class Stream>
asio::awaitable<void> ReadEvents(Stream& stream, beast::flat_buffer& buffer,
                                 http::response_parser<http::buffer_body>& parser,
                                 Clock::time_point connect_start, Clock::time_point steady_from,
                                 ThreadResults& out) {
  StreamEventRecorder events(connect_start, steady_from, out);
  std::array<char, 16 * 1024> scratch;
  // The deadline ends the loop (the stream's timeout closes the socket); the count never does.
  for (uint64_t reads = 0; reads < kMaxReadsPerStream; ++reads) {
    parser.get().body().data = scratch.data();
    parser.get().body().size = scratch.size();
    auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    size_t got = scratch.size() - parser.get().body().size;
    if (got > 0 &&
        !events.Feed(std::string_view(scratch.data(), got), Clock::now(), RealtimeNs())) {
      co_return;
    }
    if (ec == beast::error::timeout) {
      ++out.open_at_end;  // the run is over; the stream was fine
      co_return;
    }
    if (ec) {
      out.Fail(&LoadErrors::early_close, "stream ended early", ec);
      co_return;
    }
    if (parser.is_done()) {
      ++out.finished;
      co_return;
    }
  }
}

// Sends the request on a connected stream (plain or TLS) and reads its events until the run ends.
template <class Stream>
asio::awaitable<void> RequestEvents(Stream& stream, const LoopbackUrl& url,
                                    Clock::time_point connect_start, Clock::time_point steady_from,
                                    ThreadResults& out) {
  http::request<http::empty_body> req{http::verb::get, url.target, 11};
  req.set(http::field::host, url.host_header);
  req.set(http::field::accept, "text/event-stream");
  req.set(http::field::cache_control, "no-cache");
  req.set(http::field::user_agent, "sse-load");
  if (auto [ec, n] = co_await http::async_write(stream, req, kNoThrow); ec) {
    if (ec == beast::error::timeout) {
      out.Fail(&LoadErrors::no_response, "no response before the run ended");
    } else {
      out.Fail(&LoadErrors::other, "write request", ec);
    }
    co_return;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<uint64_t>::max());
  if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow); ec) {
    if (ec == beast::error::timeout) {
      out.Fail(&LoadErrors::no_response, "no response before the run ended");
    } else {
      out.Fail(&LoadErrors::other, "read response head", ec);
    }
    co_return;
  }
  if (parser.get().result() != http::status::ok) {
    out.Fail(&LoadErrors::http_status, fmt::format("HTTP status {}", parser.get().result_int()));
    co_return;
  }
  if (!IsEventStream(parser.get()[http::field::content_type])) {
    out.Fail(&LoadErrors::content_type,
             fmt::format("content type \"{}\"",
                         std::string_view(parser.get()[http::field::content_type])));
    co_return;
  }

  co_await ReadEvents(stream, buffer, parser, connect_start, steady_from, out);
}

// One stream from connect to the end of the run. Every operation is bounded by `deadline`
// through the tcp_stream's timeout, which also closes the connection when the run ends.
// `tls` is set for https:// URLs: the handshake is part of the time to first event.
asio::awaitable<void> RunStream(const LoopbackUrl& url, tcp::endpoint endpoint,
                                asio::ssl::context* tls, Clock::time_point start_at,
                                Clock::time_point steady_from, Clock::time_point deadline,
                                ThreadResults& out) {
  auto executor = co_await asio::this_coro::executor;
  if (start_at >= deadline) {
    ++out.not_started;
    co_return;
  }
  if (start_at > Clock::now()) {
    asio::steady_timer ramp(executor, start_at);
    co_await ramp.async_wait(kNoThrow);
  }
  if (Clock::now() >= deadline) {
    ++out.not_started;
    co_return;
  }

  beast::tcp_stream stream(executor);
  stream.expires_at(deadline);
  const Clock::time_point connect_start = Clock::now();
  if (auto [ec] = co_await stream.async_connect(endpoint, kNoThrow); ec) {
    if (ec == beast::error::timeout) {
      ++out.not_started;
    } else {
      out.Fail(&LoadErrors::connect, "connect", ec);
    }
    co_return;
  }
  out.connect_ns.push_back((Clock::now() - connect_start) / 1ns);
  ++out.connected;
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  if (tls == nullptr) {
    co_await RequestEvents(stream, url, connect_start, steady_from, out);
    co_return;
  }

  beast::ssl_stream<beast::tcp_stream> secure(std::move(stream), *tls);
  if (url.address != url.host) {  // a name, not an address: send it as SNI
    SSL_set_tlsext_host_name(secure.native_handle(), url.host.c_str());
  }
  secure.set_verify_callback(asio::ssl::host_name_verification(url.host));
  if (LatestSession() != nullptr) SSL_set_session(secure.native_handle(), LatestSession());
  if (auto [ec] = co_await secure.async_handshake(asio::ssl::stream_base::client, kNoThrow); ec) {
    if (ec == beast::error::timeout) {
      out.Fail(&LoadErrors::no_response, "no TLS handshake before the run ended");
    } else {
      out.Fail(&LoadErrors::connect, "TLS handshake", ec);
    }
    co_return;
  }
  ++(SSL_session_reused(secure.native_handle()) ? out.tls_resumed_handshakes
                                                : out.tls_full_handshakes);
  co_await RequestEvents(secure, url, connect_start, steady_from, out);
}

Distribution Summarize(std::vector<int64_t>& samples_ns) {
  Distribution d;
  d.count = samples_ns.size();
  if (samples_ns.empty()) return d;
  std::sort(samples_ns.begin(), samples_ns.end());
  // Nearest rank, in integer per-mille so that p99.9 of 1000 samples is the 999th, not the max.
  auto at = [&](uint64_t per_mille) {
    size_t rank = (per_mille * samples_ns.size() + 999) / 1000;
    return samples_ns[std::clamp<size_t>(rank, 1, samples_ns.size()) - 1] / 1000.0;
  };
  d.p50 = at(500);
  d.p90 = at(900);
  d.p99 = at(990);
  d.p999 = at(999);
  d.max = samples_ns.back() / 1000.0;
  return d;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string DistributionJson(const Distribution& d) {
  return fmt::format(
      "{{\"count\":{},\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},\"p999\":{:.1f},\"max\":{:.1f}}"
      "}",
      d.count, d.p50, d.p90, d.p99, d.p999, d.max);
}

}  // namespace

absl::StatusOr<LoopbackUrl> ParseLoopbackUrl(std::string_view text) {
  urls::result<urls::url_view> url = urls::parse_uri(text);
  if (!url) {
    return absl::InvalidArgumentError(fmt::format("--url: not a URL: \"{}\"", text));
  }
  if (url->scheme_id() != urls::scheme::http && url->scheme_id() != urls::scheme::https) {
    return absl::InvalidArgumentError(
        fmt::format("--url: only http:// and https:// are supported, got \"{}\"", url->scheme()));
  }
  LoopbackUrl out;
  out.tls = url->scheme_id() == urls::scheme::https;
  if (out.tls) out.port = 443;
  std::string host(url->encoded_host());
  std::string lowered = host;
  for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url->host_type() == urls::host_type::ipv4 && url->host_ipv4_address().to_bytes()[0] == 127) {
    out.address = host;
  } else if (url->host_type() == urls::host_type::name && lowered == "localhost") {
    out.address = "127.0.0.1";
  } else {
    return absl::InvalidArgumentError(fmt::format(
        "--url: only loopback hosts (127.0.0.0/8 or localhost) may be loaded, got \"{}\"", host));
  }
  out.host = host;
  if (url->has_port()) {
    if (url->port().empty() || url->port_number() == 0) {
      return absl::InvalidArgumentError(
          fmt::format("--url: bad port \"{}\"", std::string_view(url->port())));
    }
    out.port = url->port_number();
  }
  out.host_header = std::string(url->encoded_host_and_port());
  out.target = std::string(url->encoded_target());
  if (out.target.empty() || out.target.front() != '/') out.target.insert(0, "/");
  return out;
}

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options) {
  absl::StatusOr<LoopbackUrl> url = ParseLoopbackUrl(options.url);
  if (!url.ok()) return url.status();
  if (options.streams < 1 || options.streams > kMaxStreams) {
    return absl::InvalidArgumentError(fmt::format("--streams: expected 1 to {}", kMaxStreams));
  }
  if (!(options.duration_s > 0 && options.duration_s <= kMaxDurationSeconds)) {
    return absl::InvalidArgumentError(fmt::format(
        "--duration: expected more than 0 and at most {} seconds", kMaxDurationSeconds));
  }
  if (!(options.connect_rate >= 0) || std::isinf(options.connect_rate)) {
    return absl::InvalidArgumentError("--connect-rate: expected 0 (unlimited) or a positive rate");
  }
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return absl::InvalidArgumentError(fmt::format("--threads: expected 1 to {}", kMaxThreads));
  }
  const tcp::endpoint endpoint(asio::ip::make_address_v4(url->address), url->port);
  if (!url->tls && (!options.ca_file.empty() || options.tls_resume)) {
    return absl::InvalidArgumentError("--ca-file and --tls-resume: only for https:// URLs");
  }
  if (options.h2 && (options.connections < 1 || options.connections > kMaxStreams)) {
    return absl::InvalidArgumentError(fmt::format("--connections: expected 1 to {}", kMaxStreams));
  }
  // One client context for every thread: verified against --ca-file or the system's bundle, TLS
  // 1.2 or newer; sessions kept only with tls_resume.
  std::optional<asio::ssl::context> tls;
  if (url->tls) {
    tls.emplace(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    tls->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                     asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    tls->set_verify_mode(asio::ssl::verify_peer, ec);
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(options.ca_file, ec);
    }
    if (options.tls_resume) {
      SSL_CTX_set_session_cache_mode(tls->native_handle(),
                                     SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(tls->native_handle(), KeepLatestSession);
    }
    if (ec) {
      return absl::InvalidArgumentError(
          fmt::format("--ca-file: cannot load \"{}\": {}", options.ca_file, ec.message()));
    }
  }

  // HTTP/1.1: a connection per stream. HTTP/2: stream i on connection i % connection_count.
  const int connection_count =
      options.h2 ? std::min(options.connections, options.streams) : options.streams;
  const int thread_count = std::min(options.threads, connection_count);
  std::vector<ThreadResults> results(thread_count);
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(options.duration_s));
  // When stream `i` is opened: all at once, or spread at connect_rate per second.
  const auto opens_at = [&](int i) {
    if (options.connect_rate <= 0) return start;
    return start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(i / options.connect_rate));
  };
  // Steady state: every stream has been opened (the ramp-up is over) and had a second to settle.
  const Clock::time_point steady_from = opens_at(options.streams - 1) + kSettle;
  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t) {
    threads.emplace_back([&, t] {
      asio::io_context context(1);
      for (int c = t; c < connection_count; c += thread_count) {
        if (!options.h2) {
          asio::co_spawn(context,
                         RunStream(*url, endpoint, tls ? &*tls : nullptr, opens_at(c), steady_from,
                                   deadline, results[t]),
                         asio::detached);
          continue;
        }
        std::vector<Clock::time_point> due;
        for (int i = c; i < options.streams; i += connection_count) due.push_back(opens_at(i));
        asio::co_spawn(context,
                       RunH2Connection(H2Target{&*url, endpoint, tls ? &*tls : nullptr},
                                       std::move(due), steady_from, deadline, results[t]),
                       asio::detached);
      }
      context.run_until(deadline + kGrace);
      ForgetLatestSession();
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();

  LoadReport report;
  report.options = options;
  report.elapsed_s = elapsed_s;
  std::vector<int64_t> connect_ns, ttfe_ns, latency_ns, steady_latency_ns;
  for (ThreadResults& r : results) {
    connect_ns.insert(connect_ns.end(), r.connect_ns.begin(), r.connect_ns.end());
    ttfe_ns.insert(ttfe_ns.end(), r.ttfe_ns.begin(), r.ttfe_ns.end());
    latency_ns.insert(latency_ns.end(), r.latency_ns.begin(), r.latency_ns.end());
    std::vector<int64_t>().swap(r.latency_ns);
    steady_latency_ns.insert(steady_latency_ns.end(), r.steady_latency_ns.begin(),
                             r.steady_latency_ns.end());
    std::vector<int64_t>().swap(r.steady_latency_ns);
    report.connected += r.connected;
    report.streams_with_events += r.streams_with_events;
    report.finished += r.finished;
    report.open_at_end += r.open_at_end;
    report.not_started += r.not_started;
    report.events += r.events;
    report.events_without_ts += r.events_without_ts;
    report.tls_full_handshakes += r.tls_full_handshakes;
    report.tls_resumed_handshakes += r.tls_resumed_handshakes;
    report.h2_connections += r.h2_connections;
    if (r.h2_peer_max_concurrent_streams != 0) {
      uint32_t& lowest = report.h2_peer_max_concurrent_streams;
      lowest = lowest == 0 ? r.h2_peer_max_concurrent_streams
                           : std::min(lowest, r.h2_peer_max_concurrent_streams);
    }
    report.errors.connect += r.errors.connect;
    report.errors.http_status += r.errors.http_status;
    report.errors.content_type += r.errors.content_type;
    report.errors.early_close += r.errors.early_close;
    report.errors.no_response += r.errors.no_response;
    report.errors.other += r.errors.other;
    if (report.errors.first.empty()) report.errors.first = r.errors.first;
  }
  report.events_per_s = elapsed_s > 0 ? report.events / elapsed_s : 0;
  report.connect_us = Summarize(connect_ns);
  report.ttfe_us = Summarize(ttfe_ns);
  report.latency_us = Summarize(latency_ns);
  report.steady_latency_us = Summarize(steady_latency_ns);
  return report;
}

std::string FormatReportText(const LoadReport& r) {
  const LoadOptions& o = r.options;
  std::string rate = o.connect_rate > 0 ? fmt::format("{:g}/s", o.connect_rate) : "unlimited";
  std::string out =
      fmt::format("sse-load{}{}\n  url       {}\n", o.label.empty() ? "" : " ", o.label, o.url);
  out += fmt::format(
      "  streams   {} on {} thread(s), connect rate {}, duration {:g} s (ran {:.2f} s)\n",
      o.streams, o.threads, rate, o.duration_s, r.elapsed_s);
  if (o.h2) {
    out += fmt::format(
        "  http/2    {} of {} connections established, server's max concurrent streams {}\n",
        r.h2_connections, std::min(o.connections, o.streams),
        r.h2_peer_max_concurrent_streams == 0 ? std::string("not announced")
                                              : std::to_string(r.h2_peer_max_concurrent_streams));
  }
  out += fmt::format(
      "  outcome   connected {}, with events {}, open at end {}, finished {}, not started {}\n",
      r.connected, r.streams_with_events, r.open_at_end, r.finished, r.not_started);
  out += fmt::format(
      "  errors    {} (connect {}, status {}, content-type {}, early close {}, no response {}, "
      "other {})\n",
      r.errors.total(), r.errors.connect, r.errors.http_status, r.errors.content_type,
      r.errors.early_close, r.errors.no_response, r.errors.other);
  if (!r.errors.first.empty()) out += fmt::format("  first     {}\n", r.errors.first);
  out += fmt::format(
      "  events    {} ({:.1f}/s){}\n", r.events, r.events_per_s,
      r.events_without_ts ? fmt::format(", {} without ts_ns", r.events_without_ts) : "");
  if (r.tls_full_handshakes + r.tls_resumed_handshakes > 0) {
    out += fmt::format("  tls       {} full handshakes, {} resumed\n", r.tls_full_handshakes,
                       r.tls_resumed_handshakes);
  }
  out += fmt::format("  {:<16}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "microseconds", "count",
                     "p50", "p90", "p99", "p99.9", "max");
  for (const auto& [name, d] :
       {std::pair{"connect", &r.connect_us}, std::pair{"first event", &r.ttfe_us},
        std::pair{"event latency", &r.latency_us},
        std::pair{"  steady state", &r.steady_latency_us}}) {
    out += fmt::format("  {:<16}{:>10}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}\n", name,
                       d->count, d->p50, d->p90, d->p99, d->p999, d->max);
  }
  return out;
}

std::string FormatReportJson(const LoadReport& r) {
  const LoadOptions& o = r.options;
  const std::string h2 = o.h2 ? fmt::format(
                                    "\"h2\":{{\"connections\":{},\"established\":{},"
                                    "\"peer_max_concurrent_streams\":{}}},",
                                    std::min(o.connections, o.streams), r.h2_connections,
                                    r.h2_peer_max_concurrent_streams)
                              : std::string();
  return fmt::format(
      "{{\"label\":{},\"url\":{},\"protocol\":{},\"streams\":{},\"threads\":{},"
      "\"duration_s\":{:g},"
      "\"connect_rate\":{:g},\"elapsed_s\":{:.3f},\"connected\":{},\"streams_with_events\":{},"
      "\"open_at_end\":{},\"finished\":{},\"not_started\":{},\"events\":{},"
      "\"events_without_ts\":{},\"events_per_s\":{:.1f},"
      "\"tls_handshakes\":{{\"full\":{},\"resumed\":{}}},{}"
      "\"errors\":{{\"total\":{},\"connect\":{},\"http_status\":{},\"content_type\":{},"
      "\"early_close\":{},\"no_response\":{},\"other\":{},\"first\":{}}},"
      "\"connect_us\":{},\"ttfe_us\":{},\"latency_us\":{},\"steady_latency_us\":{}}}\n",
      JsonString(o.label), JsonString(o.url), JsonString(o.h2 ? "h2" : "http/1.1"), o.streams,
      o.threads, o.duration_s, o.connect_rate, r.elapsed_s, r.connected, r.streams_with_events,
      r.open_at_end, r.finished, r.not_started, r.events, r.events_without_ts, r.events_per_s,
      r.tls_full_handshakes, r.tls_resumed_handshakes, h2, r.errors.total(), r.errors.connect,
      r.errors.http_status, r.errors.content_type, r.errors.early_close, r.errors.no_response,
      r.errors.other, JsonString(r.errors.first), DistributionJson(r.connect_us),
      DistributionJson(r.ttfe_us), DistributionJson(r.latency_us),
      DistributionJson(r.steady_latency_us));
}

}  // namespace apim::bench
