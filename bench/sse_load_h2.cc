#include "bench/sse_load_h2.h"

#include <nghttp2/nghttp2.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <cassert>
#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace apim::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = LoadClock;
using namespace asio::experimental::awaitable_operators;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr int32_t kStreamWindow = 16 << 20;        // SETTINGS_INITIAL_WINDOW_SIZE
constexpr int32_t kConnectionWindow = 1 << 30;     // the connection's receive window
constexpr uint32_t kAssumedPeerStreamLimit = 100;  // until the server's SETTINGS arrive (RFC 9113)
constexpr size_t kReadBuffer = 64 * 1024;
constexpr size_t kWriteBatch = 64 * 1024;  // frames gathered into one write
// The deadline ends the loops (the socket's timeout closes it); the counts never do.
constexpr uint64_t kMaxReads = uint64_t{1} << 40;
constexpr uint64_t kMaxWrites = uint64_t{1} << 40;
constexpr std::string_view kAlpnH2 = "\x02h2";

enum class Phase { kPending, kAwaitingHead, kOpen, kDone };

struct H2Stream {
  Clock::time_point due;
  Clock::time_point start;  // time to first event counts from here
  Phase phase = Phase::kPending;
  bool sent = false;  // the request's HEADERS left (nghttp2 queues those beyond the server's limit)
  int status = 0;
  std::string content_type;
  std::optional<StreamEventRecorder> events;  // from a 200 text/event-stream head on
};

// Why a connection ended before the run did: the streams it had not opened yet, or whose response
// head had not come, count under `unopened`; open ones as closed early. No value: the deadline.
struct Failure {
  uint64_t LoadErrors::*unopened;
  std::string why;
};

struct SessionDeleter {
  void operator()(nghttp2_session* session) const { nghttp2_session_del(session); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* callbacks) const {
    nghttp2_session_callbacks_del(callbacks);
  }
};
struct OptionDeleter {
  void operator()(nghttp2_option* option) const { nghttp2_option_del(option); }
};

// One connection: its streams, its nghttp2 session, and what the session's callbacks (which reach
// it through user_data) learn. Lives in RunH2Connection's frame.
struct H2Connection {
  H2Connection(asio::any_io_executor executor, std::vector<Clock::time_point> due_times,
               Clock::time_point steady, Clock::time_point end, ThreadResults& results)
      : out(results), steady_from(steady), deadline(end), wake(executor), ramp(executor) {
    streams.resize(due_times.size());
    for (size_t i = 0; i < due_times.size(); ++i) streams[i].due = due_times[i];
    unfinished = static_cast<size_t>(std::count_if(
        due_times.begin(), due_times.end(), [&](Clock::time_point due) { return due < deadline; }));
  }

  // A stream has its outcome. Once every stream due within the run has one, the writer sends
  // what is queued (resets) and ends the connection, as a finished HTTP/1.1 stream would.
  // REQUIRES: the stream had none yet.
  void Finish(H2Stream& stream) {
    assert(stream.phase != Phase::kDone && unfinished > 0);
    stream.phase = Phase::kDone;
    if (--unfinished == 0) WakeWriter();
  }

  // Ends the connection once: records why, stops the writer and the ramp, closes the socket (the
  // reader's pending read completes).
  void End(std::optional<Failure> failure) {
    if (ended) return;
    ended = true;
    ending = std::move(failure);
    wake.cancel();
    ramp.cancel();
    if (transport != nullptr) transport->close();
  }

  void WakeWriter() { wake.cancel(); }

  // What the server (or nghttp2 on our side) said when the session ended, for the report.
  std::string SessionEnd() const {
    if (!library_error.empty()) return "HTTP/2: " + library_error;
    if (!goaway.empty()) return goaway;
    return "the HTTP/2 session ended";
  }

  ThreadResults& out;
  Clock::time_point steady_from;
  Clock::time_point deadline;
  std::vector<H2Stream> streams;  // never resized: the session holds pointers to its elements
  size_t unfinished = 0;          // streams due within the run without an outcome yet
  std::unique_ptr<nghttp2_session, SessionDeleter> session;  // declared after streams: freed first
  beast::tcp_stream* transport = nullptr;
  asio::steady_timer wake;        // the writer waits here for frames to send
  asio::steady_timer ramp;        // the next stream's due time
  Clock::time_point received_at;  // of the bytes nghttp2 is processing
  int64_t received_at_ns = 0;
  bool got_settings = false;
  std::string goaway;         // the server's GOAWAY, or the one nghttp2 sent
  std::string library_error;  // nghttp2's first error message
  bool ended = false;
  std::optional<Failure> ending;
};

H2Connection& ConnectionOf(void* user_data) { return *static_cast<H2Connection*>(user_data); }

H2Stream* StreamOf(nghttp2_session* session, int32_t stream_id) {
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
}

void Reset(nghttp2_session* session, int32_t stream_id) {
  nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

std::string GoawayText(std::string_view who, const nghttp2_goaway& goaway) {
  std::string text = fmt::format("{} GOAWAY {} (last stream {})", who,
                                 nghttp2_http2_strerror(goaway.error_code), goaway.last_stream_id);
  if (goaway.opaque_data_len > 0) {
    text += fmt::format(": {}", std::string_view(reinterpret_cast<const char*>(goaway.opaque_data),
                                                 goaway.opaque_data_len));
  }
  return text;
}

int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
             size_t namelen, const uint8_t* value, size_t valuelen, uint8_t /*flags*/,
             void* /*user_data*/) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream* stream = StreamOf(session, frame->hd.stream_id);
  if (stream == nullptr || stream->phase != Phase::kAwaitingHead) return 0;  // e.g. trailers
  const std::string_view field(reinterpret_cast<const char*>(name), namelen);
  const std::string_view text(reinterpret_cast<const char*>(value), valuelen);
  if (field == ":status") {
    std::from_chars(text.data(), text.data() + text.size(), stream->status);
  } else if (field == "content-type") {
    stream->content_type = text;
  }
  return 0;
}

// A response head: a 200 text/event-stream opens the stream for events; anything else is counted
// and the stream reset.
void OnResponseHead(H2Connection& c, nghttp2_session* session, int32_t stream_id,
                    H2Stream& stream) {
  if (stream.status >= 100 && stream.status < 200) {  // interim; the final head follows
    stream.status = 0;
    stream.content_type.clear();
    return;
  }
  if (stream.status != 200) {
    c.out.Fail(&LoadErrors::http_status, fmt::format("HTTP status {}", stream.status));
  } else if (!IsEventStream(stream.content_type)) {
    c.out.Fail(&LoadErrors::content_type, fmt::format("content type \"{}\"", stream.content_type));
  } else {
    stream.phase = Phase::kOpen;
    stream.events.emplace(stream.start, c.steady_from, c.out);
    return;
  }
  c.Finish(stream);
  Reset(session, stream_id);
}

int OnFrameReceived(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  H2Connection& c = ConnectionOf(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) break;
      if (!c.got_settings) ++c.out.h2_connections;  // the server speaks HTTP/2
      c.got_settings = true;
      for (size_t i = 0; i < frame->settings.niv; ++i) {
        const nghttp2_settings_entry& entry = frame->settings.iv[i];
        if (entry.settings_id != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
        uint32_t& lowest = c.out.h2_peer_max_concurrent_streams;
        lowest = lowest == 0 ? entry.value : std::min(lowest, entry.value);
      }
      break;
    case NGHTTP2_HEADERS:
      if (H2Stream* stream = StreamOf(session, frame->hd.stream_id);
          stream != nullptr && stream->phase == Phase::kAwaitingHead) {
        OnResponseHead(c, session, frame->hd.stream_id, *stream);
      }
      break;
    case NGHTTP2_GOAWAY:
      c.goaway = GoawayText("server sent", frame->goaway);
      break;
    default:
      break;
  }
  return 0;
}

int OnFrameSent(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  H2Connection& c = ConnectionOf(user_data);
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (H2Stream* stream = StreamOf(session, frame->hd.stream_id)) stream->sent = true;
  } else if (frame->hd.type == NGHTTP2_GOAWAY && c.goaway.empty()) {
    c.goaway = GoawayText("client sent", frame->goaway);
  }
  return 0;
}

int OnFrameNotSent(nghttp2_session* session, const nghttp2_frame* frame, int lib_error_code,
                   void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream* stream = StreamOf(session, frame->hd.stream_id);
  if (stream == nullptr || stream->phase != Phase::kAwaitingHead) return 0;
  H2Connection& c = ConnectionOf(user_data);
  c.out.Fail(&LoadErrors::other,
             fmt::format("request not sent: {}", nghttp2_strerror(lib_error_code)));
  c.Finish(*stream);
  return 0;
}

int OnDataChunk(nghttp2_session* session, uint8_t /*flags*/, int32_t stream_id, const uint8_t* data,
                size_t len, void* user_data) {
  H2Stream* stream = StreamOf(session, stream_id);
  if (stream == nullptr || stream->phase != Phase::kOpen) return 0;
  H2Connection& c = ConnectionOf(user_data);
  if (!stream->events->Feed(std::string_view(reinterpret_cast<const char*>(data), len),
                            c.received_at, c.received_at_ns)) {
    c.Finish(*stream);
    Reset(session, stream_id);
  }
  return 0;
}

int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                  void* user_data) {
  H2Stream* stream = StreamOf(session, stream_id);
  if (stream == nullptr || stream->phase == Phase::kDone) return 0;
  H2Connection& c = ConnectionOf(user_data);
  if (stream->phase == Phase::kAwaitingHead) {
    c.out.Fail(&LoadErrors::other, fmt::format("stream closed before its response head ({})",
                                               nghttp2_http2_strerror(error_code)));
  } else if (stream->phase == Phase::kOpen) {
    if (error_code == NGHTTP2_NO_ERROR) {
      ++c.out.finished;
    } else {
      c.out.Fail(&LoadErrors::early_close,
                 fmt::format("stream reset: {}", nghttp2_http2_strerror(error_code)));
    }
  }
  c.Finish(*stream);
  return 0;
}

int OnLibraryError(nghttp2_session* /*session*/, int /*lib_error_code*/, const char* msg,
                   size_t len, void* user_data) {
  H2Connection& c = ConnectionOf(user_data);
  if (c.library_error.empty()) c.library_error.assign(msg, len);
  return 0;
}

// A client session with our windows, announced in the first SETTINGS the writer sends.
bool StartSession(H2Connection& c) {
  nghttp2_session_callbacks* raw_callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&raw_callbacks) != 0) return false;
  std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> callbacks(raw_callbacks);
  nghttp2_session_callbacks_set_on_header_callback(raw_callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(raw_callbacks, OnFrameReceived);
  nghttp2_session_callbacks_set_on_frame_send_callback(raw_callbacks, OnFrameSent);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(raw_callbacks, OnFrameNotSent);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(raw_callbacks, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(raw_callbacks, OnStreamClose);
  nghttp2_session_callbacks_set_error_callback2(raw_callbacks, OnLibraryError);

  nghttp2_option* raw_option = nullptr;
  if (nghttp2_option_new(&raw_option) != 0) return false;
  std::unique_ptr<nghttp2_option, OptionDeleter> option(raw_option);
  // Until the server's SETTINGS say otherwise, assume the RFC's recommended minimum, so that
  // streams beyond a lower limit wait in nghttp2's queue instead of being refused.
  nghttp2_option_set_peer_max_concurrent_streams(raw_option, kAssumedPeerStreamLimit);

  nghttp2_session* raw_session = nullptr;
  if (nghttp2_session_client_new2(&raw_session, raw_callbacks, &c, raw_option) != 0) return false;
  c.session.reset(raw_session);
  const std::array<nghttp2_settings_entry, 2> settings{{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
  }};
  return nghttp2_submit_settings(raw_session, NGHTTP2_FLAG_NONE, settings.data(),
                                 settings.size()) == 0 &&
         nghttp2_session_set_local_window_size(raw_session, NGHTTP2_FLAG_NONE, 0,
                                               kConnectionWindow) == 0;
}

nghttp2_nv Field(std::string_view name, std::string_view value) {
  // NGHTTP2_NV_FLAG_NONE: nghttp2 copies both, so the strings need not outlive the call.
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// Submits each stream's GET when it is due. Streams due before the connection was ready count
// their time to first event from when they were due (the first: from the connect start).
asio::awaitable<void> SubmitRequests(H2Connection& c, const LoopbackUrl& url,
                                     Clock::time_point connect_start, Clock::time_point ready_at) {
  const std::array<nghttp2_nv, 7> request{
      Field(":method", "GET"),
      Field(":scheme", url.tls ? "https" : "http"),
      Field(":authority", url.host_header),
      Field(":path", url.target),
      Field("accept", "text/event-stream"),
      Field("cache-control", "no-cache"),
      Field("user-agent", "sse-load"),
  };
  for (H2Stream& stream : c.streams) {
    if (c.ended || stream.due >= c.deadline) co_return;
    if (stream.due > Clock::now()) {
      c.ramp.expires_at(stream.due);
      co_await c.ramp.async_wait(kNoThrow);
      if (c.ended) co_return;
    }
    stream.start = stream.due < ready_at ? std::max(stream.due, connect_start) : Clock::now();
    const int32_t id = nghttp2_submit_request(c.session.get(), nullptr, request.data(),
                                              request.size(), nullptr, &stream);
    if (id < 0) {
      c.out.Fail(&LoadErrors::other,
                 fmt::format("submit request: {}", nghttp2_strerror(static_cast<int>(id))));
      c.Finish(stream);
      continue;
    }
    stream.phase = Phase::kAwaitingHead;
    ++c.out.connected;
    c.WakeWriter();
  }
}

// Feeds what the server sends to the session until the run or the connection ends.
template <class Stream>
asio::awaitable<void> ReadFrames(Stream& stream, H2Connection& c) {
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadBuffer]);
  for (uint64_t reads = 0; reads < kMaxReads && !c.ended; ++reads) {
    auto [ec, n] =
        co_await stream.async_read_some(asio::buffer(buffer.get(), kReadBuffer), kNoThrow);
    if (n > 0 && !c.ended) {
      const std::string_view bytes(reinterpret_cast<const char*>(buffer.get()), n);
      if (!c.got_settings && bytes.starts_with("HTTP/1.")) {
        c.End(Failure{&LoadErrors::connect,
                      fmt::format("the server answered in HTTP/1.x (\"{}\"): no HTTP/2 with prior "
                                  "knowledge there",
                                  bytes.substr(0, std::min(bytes.find('\r'), size_t{40})))});
        co_return;
      }
      c.received_at = Clock::now();
      c.received_at_ns = RealtimeNs();
      const ssize_t consumed = nghttp2_session_mem_recv(c.session.get(), buffer.get(), n);
      if (consumed < 0) {
        c.End(Failure{&LoadErrors::other,
                      fmt::format("HTTP/2: {}", nghttp2_strerror(static_cast<int>(consumed)))});
        co_return;
      }
      c.WakeWriter();
    }
    if (c.ended) co_return;
    if (ec == beast::error::timeout) {
      c.End(std::nullopt);  // the run is over
      co_return;
    }
    if (ec) {
      c.End(c.got_settings
                ? Failure{&LoadErrors::other, fmt::format("connection lost ({}){}", ec.message(),
                                                          c.goaway.empty() ? "" : "; " + c.goaway)}
                : Failure{&LoadErrors::connect,
                          fmt::format("the server closed the connection without an "
                                      "HTTP/2 SETTINGS frame ({})",
                                      ec.message())});
      co_return;
    }
  }
}

// Sends what the session has queued (requests, SETTINGS and their ACKs, window updates, resets),
// gathered into writes of up to kWriteBatch; then waits to be woken. Ends the connection once the
// session wants neither to read nor to write (a GOAWAY sent or received and its streams done).
template <class Stream>
asio::awaitable<void> WriteFrames(Stream& stream, H2Connection& c) {
  std::string batch;
  for (uint64_t writes = 0; writes < kMaxWrites && !c.ended; ++writes) {
    batch.clear();
    while (batch.size() < kWriteBatch) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(c.session.get(), &data);
      if (n < 0) {
        c.End(Failure{&LoadErrors::other,
                      fmt::format("HTTP/2: {}", nghttp2_strerror(static_cast<int>(n)))});
        co_return;
      }
      if (n == 0) break;
      batch.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!batch.empty()) {
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(batch), kNoThrow);
      if (c.ended) co_return;
      if (ec == beast::error::timeout) {
        c.End(std::nullopt);
        co_return;
      }
      if (ec) {
        c.End(Failure{&LoadErrors::other, fmt::format("write: {}", ec.message())});
        co_return;
      }
      continue;
    }
    if (c.unfinished == 0) {  // every stream has its outcome: nothing left to wait for
      c.End(std::nullopt);
      co_return;
    }
    if (nghttp2_session_want_read(c.session.get()) == 0 &&
        nghttp2_session_want_write(c.session.get()) == 0) {
      c.End(Failure{&LoadErrors::other, c.SessionEnd()});
      co_return;
    }
    c.wake.expires_at(Clock::time_point::max());
    co_await c.wake.async_wait(kNoThrow);
  }
}

template <class Stream>
asio::awaitable<void> RunSession(Stream& stream, H2Connection& c, const LoopbackUrl& url,
                                 Clock::time_point connect_start) {
  if (!StartSession(c)) {
    c.End(Failure{&LoadErrors::other, "cannot create an nghttp2 session"});
    co_return;
  }
  const Clock::time_point ready_at = Clock::now();
  co_await (ReadFrames(stream, c) && WriteFrames(stream, c) &&
            SubmitRequests(c, url, connect_start, ready_at));
}

// Counts every stream that has no outcome yet, by how the connection ended.
void Settle(H2Connection& c) {
  for (H2Stream& stream : c.streams) {
    if (stream.phase == Phase::kDone) continue;
    if (stream.due >= c.deadline) {
      ++c.out.not_started;
    } else if (!c.ending) {
      switch (stream.phase) {
        case Phase::kPending:
          ++c.out.not_started;
          break;
        case Phase::kAwaitingHead:
          c.out.Fail(&LoadErrors::no_response,
                     stream.sent
                         ? "no response before the run ended"
                         : "no response before the run ended: the request waited in the "
                           "client's queue for the server's SETTINGS_MAX_CONCURRENT_STREAMS");
          break;
        case Phase::kOpen:
          ++c.out.open_at_end;  // the run is over; the stream was fine
          break;
        case Phase::kDone:
          break;
      }
    } else if (stream.phase == Phase::kOpen) {
      c.out.Fail(&LoadErrors::early_close, c.ending->why);
    } else {
      c.out.Fail(c.ending->unopened, c.ending->why);
    }
    stream.phase = Phase::kDone;
  }
}

std::string SelectedAlpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

asio::awaitable<void> RunH2Connection(H2Target target, std::vector<Clock::time_point> due,
                                      Clock::time_point steady_from, Clock::time_point deadline,
                                      ThreadResults& out) {
  assert(!due.empty() && target.url != nullptr);
  const LoopbackUrl& url = *target.url;
  auto executor = co_await asio::this_coro::executor;
  H2Connection c(executor, std::move(due), steady_from, deadline, out);
  const Clock::time_point first_due = c.streams.front().due;
  if (first_due < deadline && first_due > Clock::now()) {
    asio::steady_timer ramp(executor, first_due);
    co_await ramp.async_wait(kNoThrow);
  }
  if (first_due >= deadline || Clock::now() >= deadline) {
    c.End(std::nullopt);
    Settle(c);
    co_return;
  }

  beast::tcp_stream stream(executor);
  stream.expires_at(deadline);
  const Clock::time_point connect_start = Clock::now();
  if (auto [ec] = co_await stream.async_connect(target.endpoint, kNoThrow); ec) {
    c.End(ec == beast::error::timeout
              ? std::nullopt
              : std::optional(Failure{&LoadErrors::connect, "connect: " + ec.message()}));
    Settle(c);
    co_return;
  }
  out.connect_ns.push_back((Clock::now() - connect_start) / std::chrono::nanoseconds(1));
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);

  if (target.tls == nullptr) {
    c.transport = &stream;
    co_await RunSession(stream, c, url, connect_start);
    Settle(c);
    co_return;
  }

  beast::ssl_stream<beast::tcp_stream> secure(std::move(stream), *target.tls);
  SSL* ssl = secure.native_handle();
  if (url.address != url.host) {  // a name, not an address: send it as SNI
    SSL_set_tlsext_host_name(ssl, url.host.c_str());
  }
  secure.set_verify_callback(asio::ssl::host_name_verification(url.host));
  SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(kAlpnH2.data()),
                      static_cast<unsigned int>(kAlpnH2.size()));
  if (LatestSession() != nullptr) SSL_set_session(ssl, LatestSession());
  if (auto [ec] = co_await secure.async_handshake(asio::ssl::stream_base::client, kNoThrow); ec) {
    c.End(ec == beast::error::timeout
              ? Failure{&LoadErrors::no_response, "no TLS handshake before the run ended"}
              : Failure{&LoadErrors::connect, "TLS handshake: " + ec.message()});
    Settle(c);
    co_return;
  }
  ++(SSL_session_reused(ssl) ? out.tls_resumed_handshakes : out.tls_full_handshakes);
  if (const std::string alpn = SelectedAlpn(ssl); alpn != "h2") {
    c.End(Failure{&LoadErrors::connect,
                  alpn.empty() ? "the server did not select h2 by ALPN (it selected none)"
                               : fmt::format("the server did not select h2 by ALPN (it selected "
                                             "\"{}\")",
                                             alpn)});
    Settle(c);
    co_return;
  }
  c.transport = &beast::get_lowest_layer(secure);
  co_await RunSession(secure, c, url, connect_start);
  Settle(c);
}

}  // namespace apim::bench
