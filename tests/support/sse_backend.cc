#include "tests/support/sse_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace apim::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// Failures here are expected outcomes (the client went away), so operations report them as values.
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

constexpr uint64_t kMaxConnections = 100'000'000;  // bounds the accept loop; Stop() ends it first
constexpr int kMaxRequestsPerConnection = 10'000;
constexpr auto kIdleTimeout = 60s;  // waiting for the next request on a kept-alive connection
constexpr auto kIoTimeout = 30s;    // one response write, or a whole request body
constexpr uint64_t kMaxRequestBody = uint64_t{1} << 30;
constexpr size_t kMaxBytesWhileStreaming = 64 * 1024;  // a client that talks during a stream
constexpr uint64_t kMaxPayloadSize = 16 << 20;         // size= for /json and /events
constexpr uint64_t kMaxIntervalMs = 3'600'000;
constexpr uint64_t kMaxStatsWaitMs = 10'000;
constexpr uint64_t kMaxSequence = uint64_t{1} << 62;
constexpr std::string_view kServerName = "sse-test-backend";

struct Counters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> open_streams{0};
  std::atomic<uint64_t> streams_started{0};
  std::atomic<uint64_t> streams_closed_by_client{0};
  std::atomic<uint64_t> events_sent{0};
  std::atomic<uint64_t> tls_handshakes_failed{0};
  std::atomic<uint64_t> tls_resumed{0};  // Handshakes that resumed a session.
};

// /stats long-polls park here until enough streams were closed by their clients. A waiter's
// timer belongs to its own connection's thread, so a wake-up is posted to that thread and finds
// the timer through a weak_ptr: the poll may have timed out and gone in the meantime.
class ClosedByClientWaiters {
 public:
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
  };

  void Add(uint64_t threshold, const std::shared_ptr<Waiter>& waiter) {
    std::lock_guard lock(mu_);
    entries_.push_back({threshold, waiter->timer.get_executor(), waiter, waiter.get()});
  }

  void Remove(const Waiter* waiter) {
    std::lock_guard lock(mu_);
    std::erase_if(entries_, [&](const Entry& e) { return e.raw == waiter || e.waiter.expired(); });
  }

  void Notify(uint64_t closed_by_client) {
    std::lock_guard lock(mu_);
    for (const Entry& entry : entries_) {
      if (entry.threshold > closed_by_client) continue;
      asio::post(entry.executor, [weak = entry.waiter] {
        if (auto waiter = weak.lock()) waiter->timer.cancel();
      });
    }
  }

 private:
  struct Entry {
    uint64_t threshold;
    asio::any_io_executor executor;
    std::weak_ptr<Waiter> waiter;
    const Waiter* raw;
  };
  std::mutex mu_;
  std::vector<Entry> entries_;
};

uint64_t RealtimeNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// The query of one request, with numeric parameters checked against a maximum.
class Query {
 public:
  explicit Query(urls::params_view params) : params_(params) {}

  std::optional<std::string> Get(std::string_view key) const {
    auto it = params_.find(key);
    if (it == params_.end()) return std::nullopt;
    return std::string((*it).value);
  }

  absl::StatusOr<std::optional<uint64_t>> Number(std::string_view key, uint64_t max) const {
    std::optional<std::string> text = Get(key);
    if (!text) return std::optional<uint64_t>();
    std::optional<uint64_t> value = ParseUnsigned(*text);
    if (!value || *value > max) {
      return absl::InvalidArgumentError(std::string(key) + ": expected an integer from 0 to " +
                                        std::to_string(max) + ", got \"" + *text + "\"");
    }
    return value;
  }

 private:
  urls::params_view params_;
};

// What an /events request asked for.
struct EventsPlan {
  std::optional<uint64_t> count;
  uint64_t interval_ms = 1000;
  uint64_t size = 0;
  uint64_t first_seq = 1;
  std::optional<std::string> last_event_id;
  bool close_framing = false;
  std::optional<uint64_t> pause_after;
  uint64_t pause_ms = 0;
  std::optional<uint64_t> idle_after;
  std::optional<uint64_t> die_after;
  bool die_rst = false;
  std::optional<uint64_t> bom_split_ms;
};

absl::StatusOr<EventsPlan> PlanEvents(const http::request<http::buffer_body>& req,
                                      const Query& query) {
  EventsPlan plan;
  absl::Status status;
  auto number = [&](std::string_view key, uint64_t max) -> std::optional<uint64_t> {
    absl::StatusOr<std::optional<uint64_t>> parsed = query.Number(key, max);
    if (parsed.ok()) return *parsed;
    if (status.ok()) status = parsed.status();
    return std::nullopt;
  };
  plan.count = number("count", kMaxSequence);
  plan.interval_ms = number("interval_ms", kMaxIntervalMs).value_or(plan.interval_ms);
  plan.size = number("size", kMaxPayloadSize).value_or(0);
  plan.pause_after = number("pause_after", kMaxSequence);
  std::optional<uint64_t> pause_ms = number("pause_mid_event_ms", kMaxIntervalMs);
  plan.pause_ms = pause_ms.value_or(0);
  plan.idle_after = number("idle_after", kMaxSequence);
  plan.die_after = number("die_after", kMaxSequence);
  plan.bom_split_ms = number("bom_split_ms", kMaxIntervalMs);
  if (!status.ok()) return status;
  if (plan.pause_after.has_value() != pause_ms.has_value()) {
    return absl::InvalidArgumentError("pause_after and pause_mid_event_ms go together");
  }

  std::string framing = query.Get("framing").value_or("chunked");
  if (framing != "chunked" && framing != "close") {
    return absl::InvalidArgumentError("framing: expected chunked or close, got \"" + framing +
                                      "\"");
  }
  // HTTP/1.0 has no chunked encoding: the end of its body is the end of the connection.
  plan.close_framing = framing == "close" || req.version() < 11;
  std::string die = query.Get("die").value_or("close");
  if (die != "close" && die != "rst") {
    return absl::InvalidArgumentError("die: expected close or rst, got \"" + die + "\"");
  }
  plan.die_rst = die == "rst";

  if (auto header = req.find("Last-Event-ID"); header != req.end()) {
    plan.last_event_id = std::string(header->value());
  } else {
    plan.last_event_id = query.Get("last_event_id");
  }
  if (plan.last_event_id) {
    // Replay: resume after the last event the client saw. An ID this backend never sent (not a
    // number) starts from the beginning, as a fresh stream would.
    std::optional<uint64_t> last = ParseUnsigned(*plan.last_event_id);
    if (last && *last < kMaxSequence) plan.first_seq = *last + 1;
    if (plan.last_event_id->find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError("Last-Event-ID: must not contain line breaks");
    }
  }
  return plan;
}

std::string FormatEvent(uint64_t seq, uint64_t size) {
  std::string event = "id: " + std::to_string(seq) + "\ndata: {\"seq\":" + std::to_string(seq) +
                      ",\"ts_ns\":" + std::to_string(RealtimeNs()) + ",\"pad\":\"";
  constexpr std::string_view kTail = "\"}\n\n";
  size_t bare = event.size() + kTail.size();
  if (size > bare) event.append(size - bare, 'x');
  event += kTail;
  return event;
}

std::string JsonBody(uint64_t size) {
  std::string body = "{\"pad\":\"";
  constexpr std::string_view kTail = "\"}";
  size_t bare = body.size() + kTail.size();
  if (size > bare) body.append(size - bare, 'x');
  body += kTail;
  return body;
}

std::string StatsJson(const Counters& c) {
  return "{\"connections_accepted\":" + std::to_string(c.connections_accepted.load()) +
         ",\"open_streams\":" + std::to_string(c.open_streams.load()) +
         ",\"streams_started\":" + std::to_string(c.streams_started.load()) +
         ",\"streams_closed_by_client\":" + std::to_string(c.streams_closed_by_client.load()) +
         ",\"events_sent\":" + std::to_string(c.events_sent.load()) +
         ",\"tls_handshakes_failed\":" + std::to_string(c.tls_handshakes_failed.load()) +
         ",\"tls_resumed\":" + std::to_string(c.tls_resumed.load()) + "}";
}

std::string EchoJson(const http::request<http::buffer_body>& req, uint64_t body_bytes) {
  // Header names are case-insensitive: report them lowercased, repeated ones joined by ", ".
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto same = std::find_if(headers.begin(), headers.end(),
                             [&](const auto& h) { return h.first == name; });
    if (same == headers.end()) {
      headers.emplace_back(std::move(name), std::string(field.value()));
    } else {
      same->second += ", ";
      same->second += field.value();
    }
  }
  std::string json = "{\"method\":" + JsonString(req.method_string()) +
                     ",\"target\":" + JsonString(req.target()) + ",\"headers\":{";
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0) json += ',';
    json += JsonString(headers[i].first) + ":" + JsonString(headers[i].second);
  }
  json += "},\"body_bytes\":" + std::to_string(body_bytes) + "}";
  return json;
}

// Everything the connections of one backend share.
struct ServerState {
  SseBackendOptions options;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  Counters counters;
  ClosedByClientWaiters waiters;
  std::optional<asio::ssl::context> tls;  // Set when serving HTTPS.
  bool started = false;
  bool stopped = false;
};

void LogException(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::debug("sse-test-backend: connection ended by exception: {}", e.what());
  }
}

// Sends a whole response with Content-Length. Returns whether the connection stays open. The
// status is a number so that /status/<code> can answer codes Beast has no name for.
template <typename Stream>
asio::awaitable<bool> Reply(Stream& stream, const http::request<http::buffer_body>& req,
                            unsigned status, std::string_view content_type, std::string body) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.result(status);
  if (res.result() == http::status::unknown) res.reason("Unknown");  // e.g. /status/299
  res.set(http::field::server, kServerName);
  if (!content_type.empty()) res.set(http::field::content_type, content_type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  auto [ec, written] = co_await http::async_write(stream, res, kNoThrow);
  co_return !ec && res.keep_alive();
}

template <typename Stream>
asio::awaitable<bool> ReplyError(Stream& stream, const http::request<http::buffer_body>& req,
                                 http::status status, std::string_view message) {
  co_return co_await Reply(stream, req, static_cast<unsigned>(status), "text/plain",
                           std::string(message) + "\n");
}

// Writes one piece of an event-stream body straight to the socket: as one chunk, or as raw bytes
// when the end of the body is the end of the connection. Never buffered, so a test sees exactly
// the pieces the plan asked for.
template <typename Stream>
asio::awaitable<bool> WritePiece(Stream& stream, bool close_framing, std::string_view piece) {
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  boost::system::error_code ec;
  if (close_framing) {
    std::tie(ec, std::ignore) = co_await asio::async_write(stream, asio::buffer(piece), kNoThrow);
  } else {
    std::tie(ec, std::ignore) =
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(piece)), kNoThrow);
  }
  co_return !ec;
}

enum class StreamEnd {
  kCompleted,    // count reached (or the stream hit max_stream_duration): body ended normally
  kDied,         // die_after: the connection was dropped on purpose
  kWriteFailed,  // the client stopped taking data or went away
};

// Sends the events of `plan`. Records how it ended in `end` before returning; if it is cancelled
// because the client went away, `end` stays empty.
template <typename Stream>
asio::awaitable<void> WriteEvents(ServerState& state, Stream& stream, const EventsPlan& plan,
                                  std::optional<StreamEnd>& end) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const Clock::time_point deadline = Clock::now() + state.options.max_stream_duration;
  const bool chunked = !plan.close_framing;

  auto finish = [&]() -> asio::awaitable<void> {
    boost::system::error_code ec;
    if (chunked) {
      beast::get_lowest_layer(stream).expires_after(kIoTimeout);
      std::tie(ec, std::ignore) =
          co_await asio::async_write(stream, http::make_chunk_last(), kNoThrow);
    } else {
      beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    end = ec ? StreamEnd::kWriteFailed : StreamEnd::kCompleted;
  };

  if (plan.last_event_id) {
    if (!co_await WritePiece(stream, plan.close_framing,
                             ": last-event-id " + *plan.last_event_id + "\n\n")) {
      end = StreamEnd::kWriteFailed;
      co_return;
    }
  }

  if (plan.bom_split_ms) {
    // A BOM in two pieces, a pause before each: whoever relays it must not split it further.
    for (std::string_view part : {std::string_view("\xEF"), std::string_view("\xBB\xBF")}) {
      timer.expires_after(milliseconds(*plan.bom_split_ms));
      auto [ec] = co_await timer.async_wait(kNoThrow);
      if (ec) co_return;
      if (!co_await WritePiece(stream, plan.close_framing, part)) {
        end = StreamEnd::kWriteFailed;
        co_return;
      }
    }
  }

  const uint64_t count = plan.count.value_or(std::numeric_limits<uint64_t>::max());
  Clock::time_point next_send = Clock::now();
  // Bounded by `count` and by `deadline`: every pass either ends the stream or waits an interval.
  for (uint64_t sent = 0;; ++sent) {
    if (plan.die_after && sent == *plan.die_after) {
      boost::system::error_code ignored;
      if (plan.die_rst)
        beast::get_lowest_layer(stream).socket().set_option(asio::socket_base::linger(true, 0),
                                                            ignored);
      beast::get_lowest_layer(stream).close();
      end = StreamEnd::kDied;
      co_return;
    }
    if (plan.idle_after && sent == *plan.idle_after) {
      timer.expires_at(deadline);
      auto [ec] = co_await timer.async_wait(kNoThrow);
      if (ec) co_return;  // cancelled: the client went away
      co_await finish();
      co_return;
    }
    if (sent == count) {
      co_await finish();
      co_return;
    }
    if (sent > 0) {
      next_send = std::max(next_send + milliseconds(plan.interval_ms), Clock::now());
      if (next_send >= deadline) {
        co_await finish();
        co_return;
      }
      timer.expires_at(next_send);
      auto [ec] = co_await timer.async_wait(kNoThrow);
      if (ec) co_return;
    }

    std::string event = FormatEvent(plan.first_seq + sent, plan.size);
    if (plan.pause_after && sent == *plan.pause_after) {
      // Half an event now, the rest later: whoever relays this must not wait for the boundary.
      std::string_view text = event;
      size_t data_start = text.find("\ndata: ") + 8;
      size_t half = std::clamp(text.size() / 2, data_start, text.size() - 2);  // inside the data
      if (!co_await WritePiece(stream, plan.close_framing, text.substr(0, half))) {
        end = StreamEnd::kWriteFailed;
        co_return;
      }
      timer.expires_after(milliseconds(plan.pause_ms));
      auto [ec] = co_await timer.async_wait(kNoThrow);
      if (ec) co_return;
      if (!co_await WritePiece(stream, plan.close_framing, text.substr(half))) {
        end = StreamEnd::kWriteFailed;
        co_return;
      }
    } else if (!co_await WritePiece(stream, plan.close_framing, event)) {
      end = StreamEnd::kWriteFailed;
      co_return;
    }
    state.counters.events_sent.fetch_add(1);
  }
}

// Keeps a read pending for as long as the stream runs, and returns when the client has gone
// (EOF or an error), which a silent stream would otherwise only notice at its next write.
asio::awaitable<void> WatchForClientGone(tcp::socket& socket, bool& client_sent_bytes) {
  std::array<char, 1024> scratch;
  for (size_t received = 0; received < kMaxBytesWhileStreaming;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(scratch), kNoThrow);
    if (ec) co_return;
    received += n;
    client_sent_bytes = true;
  }
  // A client that keeps sending during a stream is not a stream client: treat it as gone.
}

template <typename Stream>
asio::awaitable<bool> ServeEvents(ServerState& state, Stream& stream,
                                  const http::request<http::buffer_body>& req,
                                  const EventsPlan& plan) {
  http::response<http::empty_body> res{http::status::ok, req.version()};
  res.set(http::field::server, kServerName);
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-cache");
  if (plan.close_framing) {
    res.keep_alive(false);
  } else {
    res.keep_alive(req.keep_alive());
    res.chunked(true);
  }
  http::response_serializer<http::empty_body> serializer{res};
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  auto [ec, written] = co_await http::async_write_header(stream, serializer, kNoThrow);
  if (ec) co_return false;

  state.counters.streams_started.fetch_add(1);
  state.counters.open_streams.fetch_add(1);
  std::optional<StreamEnd> end;
  bool client_sent_bytes = false;
  auto executor = co_await asio::this_coro::executor;
  // Whichever finishes first (the events, or the client leaving) cancels the other.
  co_await asio::experimental::make_parallel_group(
      asio::co_spawn(executor, WriteEvents(state, stream, plan, end), asio::deferred),
      asio::co_spawn(
          executor, WatchForClientGone(beast::get_lowest_layer(stream).socket(), client_sent_bytes),
          asio::deferred))
      .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);

  state.counters.open_streams.fetch_sub(1);
  // No recorded end means the writer was cancelled: the watcher saw the client leave first.
  if (!end || *end == StreamEnd::kWriteFailed) {
    uint64_t closed = state.counters.streams_closed_by_client.fetch_add(1) + 1;
    state.waiters.Notify(closed);
  }
  co_return end == StreamEnd::kCompleted && !plan.close_framing && !client_sent_bytes &&
      res.keep_alive();
}

template <typename Stream>
asio::awaitable<bool> ServeStats(ServerState& state, Stream& stream,
                                 const http::request<http::buffer_body>& req, const Query& query) {
  absl::StatusOr<std::optional<uint64_t>> wait_for =
      query.Number("wait_closed_by_client", kMaxSequence);
  absl::StatusOr<std::optional<uint64_t>> timeout_ms =
      query.Number("timeout_ms", std::numeric_limits<uint32_t>::max());
  if (!wait_for.ok() || !timeout_ms.ok()) {
    absl::Status status = wait_for.ok() ? timeout_ms.status() : wait_for.status();
    co_return co_await ReplyError(stream, req, http::status::bad_request,
                                  std::string(status.message()));
  }
  if (*wait_for) {
    using Waiter = ClosedByClientWaiters::Waiter;
    auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    // Register before looking at the counter, so a close in between still wakes us.
    state.waiters.Add(**wait_for, waiter);
    if (state.counters.streams_closed_by_client.load() < **wait_for) {
      waiter->timer.expires_after(
          milliseconds(std::min(timeout_ms->value_or(kMaxStatsWaitMs), kMaxStatsWaitMs)));
      co_await waiter->timer.async_wait(kNoThrow);  // ends on timeout or wake-up alike
    }
    state.waiters.Remove(waiter.get());
  }
  co_return co_await Reply(stream, req, 200, "application/json", StatsJson(state.counters));
}

// Answers one request whose body has been read. Returns whether the connection stays open.
template <typename Stream>
asio::awaitable<bool> Respond(ServerState& state, Stream& stream,
                              const http::request<http::buffer_body>& req, uint64_t body_bytes) {
  urls::result<urls::url_view> target = urls::parse_origin_form(req.target());
  if (!target) {
    co_return co_await ReplyError(stream, req, http::status::bad_request, "bad request target");
  }
  std::string_view path = target->encoded_path();
  size_t slash = path.rfind('/');
  std::string_view last = path.substr(slash + 1);
  std::string_view parent = path.substr(0, slash);
  Query query(target->params());
  const http::verb method = req.method();

  if (last == "events") {
    // POST as well: a stream may answer a request with a body (a prompt, a subscription).
    if (method != http::verb::get && method != http::verb::post) {
      co_return co_await ReplyError(stream, req, http::status::method_not_allowed,
                                    "GET or POST only");
    }
    absl::StatusOr<EventsPlan> plan = PlanEvents(req, query);
    if (!plan.ok()) {
      co_return co_await ReplyError(stream, req, http::status::bad_request,
                                    std::string(plan.status().message()));
    }
    co_return co_await ServeEvents(state, stream, req, *plan);
  }
  if (last == "json") {
    absl::StatusOr<std::optional<uint64_t>> size = query.Number("size", kMaxPayloadSize);
    if (!size.ok()) {
      co_return co_await ReplyError(stream, req, http::status::bad_request,
                                    std::string(size.status().message()));
    }
    co_return co_await Reply(stream, req, 200, "application/json", JsonBody(size->value_or(64)));
  }
  if (last == "echo") {
    co_return co_await Reply(stream, req, 200, "application/json", EchoJson(req, body_bytes));
  }
  if (last == "stats") co_return co_await ServeStats(state, stream, req, query);
  if (parent.ends_with("/status") || parent == "status") {
    std::optional<uint64_t> code = ParseUnsigned(last);
    if (!code || *code < 200 || *code > 599) {
      co_return co_await ReplyError(stream, req, http::status::bad_request,
                                    "status: expected a code from 200 to 599");
    }
    co_return co_await Reply(stream, req, static_cast<unsigned>(*code), "", "");
  }
  co_return co_await ReplyError(stream, req, http::status::not_found, "no such route");
}

// Reads the rest of the request body into a scratch buffer and counts it: /echo reports the
// size, and no route keeps the bytes. Returns nothing when the connection failed.
template <typename Stream>
asio::awaitable<std::optional<uint64_t>> DrainBody(
    Stream& stream, beast::flat_buffer& buffer, http::request_parser<http::buffer_body>& parser) {
  if (beast::iequals(parser.get()[http::field::expect], "100-continue") && !parser.is_done()) {
    http::response<http::empty_body> proceed{http::status::continue_, 11};
    beast::get_lowest_layer(stream).expires_after(kIoTimeout);
    auto [ec, n] = co_await http::async_write(stream, proceed, kNoThrow);
    if (ec) co_return std::nullopt;
  }
  std::array<char, 16 * 1024> scratch;
  uint64_t total = 0;
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);  // one deadline for the whole body
  // Bounded: each pass consumes input, the body is at most kMaxRequestBody, and the deadline holds.
  while (!parser.is_done()) {
    parser.get().body().data = scratch.data();
    parser.get().body().size = scratch.size();
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return std::nullopt;
    total += scratch.size() - parser.get().body().size;
  }
  co_return total;
}

// Serves the requests of one connection, plaintext or TLS, until it closes.
template <typename Stream>
asio::awaitable<void> ServeRequests(ServerState& state, Stream& stream) {
  beast::flat_buffer buffer;
  for (int served = 0; served < kMaxRequestsPerConnection; ++served) {
    http::request_parser<http::buffer_body> parser;
    parser.body_limit(kMaxRequestBody);
    beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kNoThrow);
    if (ec) break;
    std::optional<uint64_t> body_bytes = co_await DrainBody(stream, buffer, parser);
    if (!body_bytes) break;
    if (!co_await Respond(state, stream, parser.get(), *body_bytes)) break;
  }
  boost::system::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Session(ServerState& state, tcp::socket socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  beast::tcp_stream plain(std::move(socket));
  if (!state.tls) co_return co_await ServeRequests(state, plain);
  beast::ssl_stream<beast::tcp_stream> stream(std::move(plain), *state.tls);
  beast::get_lowest_layer(stream).expires_after(kIoTimeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow);
  if (ec) {
    state.counters.tls_handshakes_failed.fetch_add(1);
    co_return;
  }
  if (SSL_session_reused(stream.native_handle())) state.counters.tls_resumed.fetch_add(1);
  co_await ServeRequests(state, stream);
}

asio::awaitable<void> AcceptConnections(ServerState& state) {
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  tcp::acceptor& acceptor = *state.acceptor;
  for (uint64_t accepted = 0; accepted < kMaxConnections && acceptor.is_open();) {
    asio::io_context& context = *state.contexts[accepted % state.contexts.size()];
    auto [ec, socket] = co_await acceptor.async_accept(context, kNoThrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
    if (ec) {
      // Out of file descriptors, say: back off instead of spinning on the same error.
      spdlog::warn("sse-test-backend: accept failed: {}", ec.message());
      backoff.expires_after(50ms);
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    ++accepted;
    state.counters.connections_accepted.fetch_add(1);
    asio::co_spawn(context, Session(state, tcp::socket(std::move(socket))), LogException);
  }
}

}  // namespace

struct SseBackend::State : ServerState {};

SseBackend::SseBackend(SseBackendOptions options) : state_(std::make_unique<State>()) {
  state_->options = options;
}

SseBackend::~SseBackend() { Stop(); }

absl::StatusOr<uint16_t> SseBackend::Start(std::string_view listen) {
  State& state = *state_;
  if (state.started) return absl::FailedPreconditionError("SseBackend::Start called twice");
  if (state.options.threads < 1 || state.options.threads > 256) {
    return absl::InvalidArgumentError("threads: expected 1 to 256");
  }
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError("listen: expected HOST:PORT, got \"" + std::string(listen) +
                                      "\"");
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  std::optional<uint64_t> port = ParseUnsigned(listen.substr(colon + 1));
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec || !port || *port > 65535) {
    return absl::InvalidArgumentError("listen: expected IP:PORT, got \"" + std::string(listen) +
                                      "\"");
  }
  if (!address.is_loopback()) {
    return absl::InvalidArgumentError("listen: test backend serves loopback addresses only, got " +
                                      host);
  }

  if (!state.options.tls_cert_file.empty()) {
    // HTTPS, TLS 1.2 and up, with sessions resumable (tickets and the server cache).
    asio::ssl::context& tls = state.tls.emplace(asio::ssl::context::tls_server);
    tls.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    tls.use_certificate_chain_file(state.options.tls_cert_file, ec);
    if (!ec) tls.use_private_key_file(state.options.tls_key_file, asio::ssl::context::pem, ec);
    if (!ec && !state.options.tls_client_ca_file.empty()) {
      tls.load_verify_file(state.options.tls_client_ca_file, ec);
      tls.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
    static constexpr unsigned char kSessionContext[] = "sse-test-backend";
    SSL_CTX_set_session_id_context(tls.native_handle(), kSessionContext,
                                   sizeof kSessionContext - 1);
    if (ec) {
      state.tls.reset();
      return absl::InvalidArgumentError("tls: " + ec.message());
    }
  }
  for (int i = 0; i < state.options.threads; ++i) {
    state.contexts.push_back(std::make_unique<asio::io_context>(1));
    state.work.push_back(asio::make_work_guard(*state.contexts.back()));
  }
  tcp::endpoint endpoint(address, static_cast<uint16_t>(*port));
  tcp::acceptor& acceptor = state.acceptor.emplace(*state.contexts.front());
  std::string failed_step;
  if (acceptor.open(endpoint.protocol(), ec)) {
    failed_step = "open";
  } else if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) {
    failed_step = "set SO_REUSEADDR";
  } else if (acceptor.bind(endpoint, ec)) {
    failed_step = "bind";
  } else if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    failed_step = "listen";
  }
  if (!failed_step.empty()) {
    state.acceptor.reset();
    state.work.clear();
    state.contexts.clear();
    return absl::UnavailableError("listen " + std::string(listen) + ": " + failed_step + ": " +
                                  ec.message());
  }
  uint16_t bound_port = acceptor.local_endpoint().port();

  state.started = true;
  asio::co_spawn(*state.contexts.front(), AcceptConnections(state), LogException);
  for (auto& context : state.contexts) {
    state.threads.emplace_back([&context = *context] { context.run(); });
  }
  return bound_port;
}

void SseBackend::Stop() {
  State& state = *state_;
  if (!state.started || state.stopped) return;
  state.stopped = true;
  state.work.clear();
  for (auto& context : state.contexts) context->stop();
  for (std::thread& thread : state.threads) thread.join();
  // Destroying the contexts destroys the suspended sessions, which closes their sockets.
  state.acceptor.reset();
  state.contexts.clear();
}

SseBackendStats SseBackend::stats() const {
  const Counters& c = state_->counters;
  return {c.connections_accepted.load(), c.open_streams.load(),
          c.streams_started.load(),      c.streams_closed_by_client.load(),
          c.events_sent.load(),          c.tls_handshakes_failed.load(),
          c.tls_resumed.load()};
}

}  // namespace apim::testing
