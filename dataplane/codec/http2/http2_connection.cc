#include "dataplane/codec/http2/http2_connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "common/str_cat.h"
#include "dataplane/admin/access_log.h"
#include "dataplane/exchange/exchange.h"
#include "dataplane/exchange/problem.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

// At most this much is read from the client at once, into a buffer of the thread's: nghttp2
// copies what it keeps.
constexpr size_t kReadBytes = 16 * 1024;
// A flush frames at most this much before it writes: one write, and a bound on what waits when
// the socket takes nothing.
constexpr size_t kFlushBytes = 64 * 1024;
// Request bodies of all streams together may be this far ahead of the exchanges reading them.
constexpr int32_t kConnectionWindow = 1 << 20;
// A wake-up reads at most this many times before others on the thread get their turn.
constexpr int kReadsPerWake = 8;

char* ReadBuffer() {
  static thread_local char buffer[kReadBytes];
  return buffer;
}

std::string& FramedBuffer() {
  static thread_local std::string buffer;
  return buffer;
}

}  // namespace

awaitable<void> ServeHttp2(SocketStream& client, std::string received, const std::string& client_ip,
                           SessionContext& context) {
  Http2Connection connection(client, client_ip, context);
  co_await connection.Serve(std::move(received));
}

Http2Connection::Http2Connection(SocketStream& client, const std::string& client_ip,
                                 SessionContext& context)
    : client_(client),
      client_ip_(client_ip),
      context_(context),
      resets_(context.limits.http2_max_resets_per_second),
      control_frames_(context.limits.http2_max_control_frames_per_second),
      writer_wake_(client.get_executor()),
      exchanges_ended_(client.get_executor()) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameReceived);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClosed);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSent);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, &OnInvalidFrame);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // Request body windows open as exchanges read, not as bytes arrive: that bounds what is held.
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_no_closed_streams(option, 1);
#ifdef APIM_HAVE_NGHTTP2_RESET_RATE_LIMIT
  // nghttp2's own rapid-reset limit, as a backstop to ours (which also counts the resets a
  // client's errors cause).
  nghttp2_option_set_stream_reset_rate_limit(option, 2 * context.limits.http2_max_resets_per_second,
                                             context.limits.http2_max_resets_per_second);
#endif
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, context.limits.http2_max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, NGHTTP2_INITIAL_WINDOW_SIZE},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(context.limits.max_request_header_bytes)},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  context_.http2_connections.insert(this);
}

Http2Connection::~Http2Connection() {
  context_.http2_connections.erase(this);
  // Calls no callback; the streams are gone by now (Serve waits for their exchanges).
  nghttp2_session_del(session_);
}

nghttp2_data_provider Http2Connection::BodySource() {
  nghttp2_data_provider source{};
  source.read_callback = &ReadBody;
  return source;
}

std::chrono::steady_clock::duration Http2Connection::IdleTimeout() const {
  std::shared_ptr<const RuntimeSnapshot> snapshot = context_.snapshots.Current();
  return snapshot ? snapshot->routes.tier().idle_timeout : context_.limits.idle_timeout;
}

awaitable<void> Http2Connection::Serve(std::string received) {
  if (context_.draining.load()) Drain();
  const bool received_well = Receive(received);
  std::string().swap(received);  // Not kept for the connection's life.
  if (received_well) {
    Flush();
    co_await (ReadLoop() && WriteLoop());
  }
  End();
  // Whatever is left learns that its client is gone; the exchanges end, and are waited for:
  // they refer to their streams.
  for (auto it = streams_.begin(); it != streams_.end();) {
    it->second->Closed();
    it = it->second->started() ? std::next(it) : streams_.erase(it);
  }
  while (!streams_.empty()) {
    exchanges_ended_.expires_at(asio::steady_timer::time_point::max());
    co_await exchanges_ended_.async_wait(kNoThrow);
  }
}

bool Http2Connection::Receive(std::string_view bytes) {
  in_nghttp2_ = true;
  const ssize_t used = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  in_nghttp2_ = false;
  if (used < 0) {
    // A broken preface or a fatal protocol error: nghttp2 may have a GOAWAY to send.
    spdlog::debug("HTTP/2 client {}: {}", client_ip_, nghttp2_strerror(static_cast<int>(used)));
    Flush();
    return false;
  }
  StartExchanges();
  return true;
}

awaitable<void> Http2Connection::ReadLoop() {
  SocketStream::Wait wait = SocketStream::Wait::kReadable;
  while (!ended_) {
    // Without a stream, a connection may stay silent for the tier's idle timeout; with streams,
    // each stream's clock keeps time.
    std::optional<SocketDeadline> idle;
    if (streams_.empty()) idle.emplace(client_.socket(), IdleTimeout());
    const auto direction =
        wait == SocketStream::Wait::kWritable ? tcp::socket::wait_write : tcp::socket::wait_read;
    auto [error] = co_await client_.socket().async_wait(direction, kNoThrow);
    if (ended_) break;
    if (idle && idle->expired()) {
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      Flush();
      break;
    }
    if (error == asio::error::operation_aborted) continue;
    if (error) break;
    wait = SocketStream::Wait::kReadable;
    bool gone = false;
    for (int reads = 0; reads < kReadsPerWake && !ended_; ++reads) {
      const SocketStream::Tried got = client_.TryRead(ReadBuffer(), kReadBytes);
      if (got.bytes == 0) {
        gone = got.wait == SocketStream::Wait::kNone;  // The client closed, or the read failed.
        if (!gone) wait = got.wait;
        break;
      }
      if (!Receive(std::string_view(ReadBuffer(), got.bytes))) {
        gone = true;
        break;
      }
      Flush();
      if (got.bytes < kReadBytes && client_.ssl() == nullptr) break;
    }
    if (gone) break;
  }
  End();
}

awaitable<void> Http2Connection::WriteLoop() {
  while (!ended_) {
    if (unsent_.empty()) {
      writer_wake_.expires_at(asio::steady_timer::time_point::max());
      co_await writer_wake_.async_wait(kNoThrow);
      continue;
    }
    const auto direction = unsent_waits_for_ == SocketStream::Wait::kReadable
                               ? tcp::socket::wait_read
                               : tcp::socket::wait_write;
    co_await client_.socket().async_wait(direction, kNoThrow);
    if (ended_) break;
    Flush();
  }
}

void Http2Connection::End() {
  if (ended_) return;
  ended_ = true;
  writer_wake_.cancel();
  boost::system::error_code ignored;
  client_.socket().cancel(ignored);
}

void Http2Connection::Flush() {
  if (in_nghttp2_ || ended_) return;
  for (;;) {
    if (!unsent_.empty()) {
      const SocketStream::Tried wrote = client_.TryWrite(unsent_.data(), unsent_.size());
      if (wrote.bytes == 0 && wrote.wait == SocketStream::Wait::kNone) return End();
      unsent_.erase(0, wrote.bytes);
      if (!unsent_.empty()) {
        unsent_waits_for_ = wrote.wait;
        writer_wake_.cancel();
        return;
      }
      std::string().swap(unsent_);
    }
    std::string& framed = FramedBuffer();
    framed.clear();
    in_nghttp2_ = true;
    ssize_t size = 0;
    while (framed.size() < kFlushBytes) {
      const uint8_t* data = nullptr;
      size = nghttp2_session_mem_send(session_, &data);
      if (size <= 0) break;
      framed.append(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
    }
    in_nghttp2_ = false;
    if (size < 0) {
      spdlog::warn("HTTP/2 client {}: {}", client_ip_, nghttp2_strerror(static_cast<int>(size)));
      return End();
    }
    if (!framed.empty()) {
      const SocketStream::Tried wrote = client_.TryWrite(framed.data(), framed.size());
      if (wrote.bytes == 0 && wrote.wait == SocketStream::Wait::kNone) return End();
      if (wrote.bytes < framed.size()) {
        // Kept for the writer; over TLS what OpenSSL did not take is what it wants again.
        unsent_.assign(framed, wrote.bytes);
        unsent_waits_for_ =
            wrote.wait == SocketStream::Wait::kNone ? SocketStream::Wait::kWritable : wrote.wait;
        writer_wake_.cancel();
        return;
      }
    }
    if (framed.size() < kFlushBytes) break;
  }
  // Nothing more to read or write (GOAWAY both ways, or terminated, and sent): the end.
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    End();
  }
}

void Http2Connection::Drain() {
  if (draining_ || ended_) return;
  draining_ = true;
  // A first GOAWAY that refuses nothing yet (streams the client opened meanwhile are served);
  // the final one goes when the streams have ended, at an event boundary.
  nghttp2_submit_shutdown_notice(session_);
  Flush();
  CloseIfDone();
}

void Http2Connection::CloseIfDone() {
  if (!draining_ || !streams_.empty() || ended_) return;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  Flush();
}

Http2Stream* Http2Connection::StreamOf(int32_t id) {
  auto found = streams_.find(id);
  return found == streams_.end() ? nullptr : found->second.get();
}

void Http2Connection::StartExchanges() {
  std::vector<int32_t> ready;
  ready.swap(ready_);
  for (const int32_t id : ready) {
    Http2Stream* stream = StreamOf(id);
    if (stream == nullptr || stream->started()) continue;
    if (stream->closed()) {
      streams_.erase(id);
      continue;
    }
    stream->Start();
    ++context_.metrics.http2_streams;
    asio::co_spawn(executor(),
                   stream->header_list_too_large() ? Refuse(*stream) : RunExchange(*stream),
                   LogWhatEscapes("an HTTP/2 stream"));
  }
}

awaitable<void> Http2Connection::RunExchange(Http2Stream& stream) {
  const int32_t id = stream.id();
  {
    // As on HTTP/1.1: every exchange ends through Run, or through Fail when something threw.
    Exchange exchange(context_, stream, client_ip_);
    std::optional<std::string> failure;
    try {
      co_await exchange.Run();
    } catch (const std::exception& error) {
      failure = error.what();
    }
    if (failure) co_await exchange.Fail(std::move(*failure));
  }
  ExchangeEnded(id);
}

awaitable<void> Http2Connection::Refuse(Http2Stream& stream) {
  const int32_t id = stream.id();
  std::string detail =
      StrCat("request headers exceed ", context_.limits.max_request_header_bytes, " bytes");
  co_await stream.SendAnswer(Problem(http::status::request_header_fields_too_large,
                                     "header-too-large", "Request headers too large", detail));
  AccessRecord record;
  record.client_ip = client_ip_;
  record.status = 431;
  record.error = std::move(detail);
  context_.metrics.CountRequest("", record.status);
  WriteAccessLog(record);
  ExchangeEnded(id);
}

void Http2Connection::ExchangeEnded(int32_t id) {
  auto found = streams_.find(id);
  if (found == streams_.end()) return;
  Http2Stream& stream = *found->second;
  if (!ended_) {
    if (!stream.closed() && !stream.reset_sent()) {
      // The response has ended while the request still runs (its body unread), or the exchange
      // left it unfinished: RFC 9113 section 8.1 resets it.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id,
                                stream.end_sent() ? NGHTTP2_NO_ERROR : NGHTTP2_INTERNAL_ERROR);
    }
    // The connection window the unread body took is given back.
    if (stream.unread_body() > 0)
      nghttp2_session_consume_connection(session_, stream.unread_body());
  }
  streams_.erase(found);
  if (streams_.empty()) {
    exchanges_ended_.cancel();
    // The read loop waits without the idle deadline while streams are open: it starts again with
    // one.
    boost::system::error_code ignored;
    if (!ended_) client_.socket().cancel(ignored);
  }
  Flush();
  CloseIfDone();
}

void Http2Connection::Spend(FrameBudget& budget, std::atomic<uint64_t>& closed_count,
                            std::string_view what) {
  if (calmed_ || budget.Take()) return;
  calmed_ = true;
  ++closed_count;
  spdlog::info("HTTP/2 client {}: {}; connection closed (GOAWAY ENHANCE_YOUR_CALM)", client_ip_,
               what);
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
}

int Http2Connection::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                    void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  // Streams count until their exchange has ended, not only while nghttp2 sees them open: a client
  // that resets its streams frees no room by it.
  if (connection.streams_.size() >= connection.context_.limits.http2_max_concurrent_streams) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    connection.Spend(connection.resets_, connection.context_.metrics.http2_closed_rapid_reset,
                     "too many streams refused");
    return 0;
  }
  connection.streams_.emplace(frame->hd.stream_id,
                              std::make_unique<Http2Stream>(connection, frame->hd.stream_id));
  return 0;
}

int Http2Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                              size_t name_length, const uint8_t* value, size_t value_length,
                              uint8_t /*flags*/, void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (Http2Stream* stream = connection.StreamOf(frame->hd.stream_id)) {
    stream->AddField(std::string_view(reinterpret_cast<const char*>(name), name_length),
                     std::string_view(reinterpret_cast<const char*>(value), value_length),
                     connection.context_.limits.max_request_header_bytes);
  }
  return 0;
}

int Http2Connection::OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  Metrics& metrics = connection.context_.metrics;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  const bool ack = (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0;
  Http2Stream* stream = connection.StreamOf(frame->hd.stream_id);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (stream == nullptr) break;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream->HeadersComplete(end_stream);
        connection.ready_.push_back(frame->hd.stream_id);
      } else if (end_stream) {
        stream->RequestEnded();  // After trailers.
      }
      break;
    case NGHTTP2_DATA:
      if (end_stream) {
        if (stream != nullptr) stream->RequestEnded();
      } else if (frame->hd.length == 0) {
        connection.Spend(connection.control_frames_, metrics.http2_closed_control_flood,
                         "too many empty DATA frames");
      }
      break;
    case NGHTTP2_RST_STREAM:
      connection.Spend(connection.resets_, metrics.http2_closed_rapid_reset,
                       "too many streams reset");
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
      if (!ack) {
        connection.Spend(connection.control_frames_, metrics.http2_closed_control_flood,
                         "too many PING or SETTINGS frames");
      }
      break;
    case NGHTTP2_PRIORITY:
      connection.Spend(connection.control_frames_, metrics.http2_closed_control_flood,
                       "too many PRIORITY frames");
      break;
    default:
      break;
  }
  return 0;
}

int Http2Connection::OnDataChunk(nghttp2_session* session, uint8_t /*flags*/, int32_t stream_id,
                                 const uint8_t* data, size_t length, void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  Http2Stream* stream = connection.StreamOf(stream_id);
  if (stream != nullptr &&
      stream->Received(std::string_view(reinterpret_cast<const char*>(data), length))) {
    connection.context_.metrics.bytes_from_clients += length;
    return 0;
  }
  // Nobody will read it: its window is given back at once.
  nghttp2_session_consume(session, stream_id, length);
  return 0;
}

int Http2Connection::OnStreamClosed(nghttp2_session*, int32_t stream_id, uint32_t /*error_code*/,
                                    void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  if (Http2Stream* stream = connection.StreamOf(stream_id)) {
    stream->Closed();
    if (!stream->started()) connection.streams_.erase(stream_id);
  }
  return 0;
}

int Http2Connection::OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& connection = *static_cast<Http2Connection*>(self);
  const bool ends = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (!ends) return 0;
  if (Http2Stream* stream = connection.StreamOf(frame->hd.stream_id)) stream->EndSent();
  return 0;
}

int Http2Connection::OnInvalidFrame(nghttp2_session*, const nghttp2_frame*, int /*error*/,
                                    void* self) {
  // nghttp2 resets the stream (or closes the connection) for it: a reset the client caused.
  auto& connection = *static_cast<Http2Connection*>(self);
  connection.Spend(connection.resets_, connection.context_.metrics.http2_closed_rapid_reset,
                   "too many invalid frames");
  return 0;
}

ssize_t Http2Connection::ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* into, size_t length,
                                  uint32_t* flags, nghttp2_data_source*, void* self) {
  Http2Stream* stream = static_cast<Http2Connection*>(self)->StreamOf(stream_id);
  // A stream whose exchange has ended is being reset: it frames nothing more.
  if (stream == nullptr) return NGHTTP2_ERR_DEFERRED;
  return stream->ReadResponseBody(into, length, flags);
}

}  // namespace apim::dataplane
