#pragma once
// One HTTP/2 client connection (nghttp2, server side). The connection's coroutine reads the socket
// and feeds nghttp2; each request runs as an Exchange of its own over an Http2Stream, so every
// SSE rule of the exchange and the relay holds per stream. Output is framed by nghttp2 and written
// try-now; what the socket does not take waits in `unsent_` for a second coroutine, and while it
// waits no stream frames more (its pieces are kept, its relay waits: backpressure).
//
// Defences (RFC 9113 section 10.5): SETTINGS_MAX_CONCURRENT_STREAMS counts streams whose exchange
// still runs, not only those nghttp2 sees open, so resetting streams frees nothing early; a
// connection that makes the gateway reset too many streams (rapid reset, CVE-2023-44487) or sends
// too many control frames per second is closed with GOAWAY ENHANCE_YOUR_CALM; the header list is
// bounded like HTTP/1.1's (431). While output waits for the socket, streams frame nothing more;
// what a client that does not read can still make nghttp2 queue (acknowledgements) is bounded by
// nghttp2 itself (max_outbound_ack).

#include <nghttp2/nghttp2.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane/codec/http2/frame_budget.h"
#include "dataplane/codec/http2/http2_stream.h"
#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

// Serves a client connection that speaks HTTP/2 (TLS, if any, already established) until it
// closes; `received` are its first bytes, read already (the preface, for h2c).
boost::asio::awaitable<void> ServeHttp2(SocketStream& client, std::string received,
                                        const std::string& client_ip, SessionContext& context);

class Http2Connection {
 public:
  Http2Connection(SocketStream& client, const std::string& client_ip, SessionContext& context);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  boost::asio::awaitable<void> Serve(std::string received);

  // Frames what nghttp2 has to send and writes it as far as the socket takes it now. Does
  // nothing inside nghttp2's callbacks (the read loop flushes after them) and once the
  // connection has ended.
  void Flush();
  // The socket refused output that still waits: streams keep their pieces meanwhile.
  bool write_blocked() const { return !unsent_.empty(); }
  // The worker drains: GOAWAY now (no new streams), the connection closes once its streams end.
  void Drain();

  // The data source every response body is submitted with: it reads from the stream's pieces.
  static nghttp2_data_provider BodySource();

  nghttp2_session* session() { return session_; }
  bool secure() const { return client_.ssl() != nullptr; }
  SessionContext& context() { return context_; }
  boost::asio::any_io_executor executor() { return client_.get_executor(); }

 private:
  // nghttp2's callbacks, with the connection as user data.
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t flags,
                      void* self);
  static int OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t length, void* self);
  static int OnStreamClosed(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* self);
  static int OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int OnInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int error, void* self);
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* into, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* self);

  // Feeds received bytes to nghttp2, then starts the exchanges of the requests that completed.
  // False when the connection cannot go on.
  bool Receive(std::string_view bytes);
  boost::asio::awaitable<void> ReadLoop();
  boost::asio::awaitable<void> WriteLoop();
  void StartExchanges();
  boost::asio::awaitable<void> RunExchange(Http2Stream& stream);
  // Answers a request that cannot be served (its headers are too large) without an exchange.
  boost::asio::awaitable<void> Refuse(Http2Stream& stream);
  // After a stream's exchange: resets what nghttp2 still has open of it, and forgets it.
  void ExchangeEnded(int32_t id);
  // Spends one of a budget; past it, GOAWAY ENHANCE_YOUR_CALM.
  void Spend(FrameBudget& budget, std::atomic<uint64_t>& closed_count, std::string_view what);
  Http2Stream* StreamOf(int32_t id);
  // Draining, and no stream is left: GOAWAY, and the connection closes once it is sent.
  void CloseIfDone();
  // The connection is over: both loops stop.
  void End();
  std::chrono::steady_clock::duration IdleTimeout() const;

  SocketStream& client_;
  const std::string& client_ip_;
  SessionContext& context_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Http2Stream>> streams_;
  std::vector<int32_t> ready_;  // Requests complete in the last input, to start after it.
  std::string unsent_;          // Framed output the socket did not take yet.
  SocketStream::Wait unsent_waits_for_ = SocketStream::Wait::kWritable;
  bool in_nghttp2_ = false;  // Inside mem_recv or mem_send: no Flush, no exchange starts.
  bool ended_ = false;       // The connection is over: nothing more is read or written.
  bool draining_ = false;
  bool calmed_ = false;  // Closed for abuse: counted and logged once.
  FrameBudget resets_;
  FrameBudget control_frames_;
  boost::asio::steady_timer writer_wake_;      // Cancelled when output waits for the socket.
  boost::asio::steady_timer exchanges_ended_;  // Cancelled when the last exchange ends.
};

}  // namespace apim::dataplane
