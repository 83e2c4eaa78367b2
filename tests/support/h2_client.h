#pragma once
// A real HTTP/2 client (nghttp2's session) over one loopback connection, for integration tests
// that speak HTTP/2 the way browsers and libraries do: cleartext h2c with prior knowledge, or TLS
// with ALPN "h2". The test drives it: nothing is sent or read except inside RunUntil and the calls
// built on it, and each of those returns when its timeout passes. For bytes nghttp2 would never
// send, use h2_frames.h over a RawConnection.

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/h2_frames.h"
#include "tests/support/raw_http.h"

namespace apim::testing {

struct H2Options {
  // nullopt: h2c with prior knowledge. Otherwise TLS, verified as `tls` says. ALPN offers
  // `tls->alpn` as given when that list names h2 (e.g. "h2,http/1.1", to see the server prefer
  // it), else exactly "h2" (TlsClient's default "http/1.1" is meant for HTTP/1.1 tests).
  std::optional<TlsClient> tls;
  std::string authority = "localhost";
  uint32_t initial_window_size = 65535;  // SETTINGS_INITIAL_WINDOW_SIZE: each stream's window.
  uint32_t connection_window = 1 << 30;  // The connection's receive window.
};

struct H2Response {
  int status = 0;    // The last :status received: the final one, once it came after any 1xx.
  H2Fields headers;  // Fields of the response's header blocks (1xx included), in order.
  H2Fields trailers;
  std::string body;         // DATA payload received so far.
  bool end_stream = false;  // END_STREAM received (a clean end).
  bool closed = false;      // The stream closed, either way.
  bool reset = false;       // Closed by the server's RST_STREAM, or by nghttp2 for an error
                            // (REFUSED_STREAM for streams a GOAWAY left out); not by Reset().
  uint32_t reset_code = 0;  // The error code the stream closed with.
  std::string header(std::string_view name) const;  // Case-insensitive; "" if absent.
};

struct H2Goaway {
  uint32_t error_code = 0;
  int32_t last_stream_id = 0;
  std::string debug;
};

class H2Connection {
 public:
  // Connects to 127.0.0.1:port (TLS and ALPN as `options.tls` says) and sends the preface and
  // SETTINGS. Throws std::runtime_error saying why it could not: connect, TLS handshake, ALPN not
  // h2, or a peer that took nothing for 10 s.
  explicit H2Connection(uint16_t port, H2Options options = {});
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Queues a request and returns its stream id. Without a body, END_STREAM is on the HEADERS;
  // with one (even empty), on its last DATA frame. Throws if nghttp2 refuses the request.
  int32_t Request(std::string_view method, std::string_view path, H2Fields headers = {},
                  std::optional<std::string> body = std::nullopt);
  // A request whose body the test sends in pieces with SendBody; the stream stays open until a
  // piece ends it.
  int32_t StartRequest(std::string_view method, std::string_view path, H2Fields headers = {});
  // Queues a piece; dropped if the stream has closed. Throws std::logic_error on a stream with no
  // body to send (a Request) or one already ended.
  void SendBody(int32_t stream, std::string_view data, bool end_stream);
  // Queues RST_STREAM. nghttp2 drops a request whose HEADERS are still queued instead of sending
  // HEADERS then RST_STREAM; Flush() after Request to put both on the wire.
  void Reset(int32_t stream, uint32_t error_code = NGHTTP2_CANCEL);

  // Stops opening this stream's flow-control window (WINDOW_UPDATE) from now on: a client that
  // stops reading one stream. The connection window stays open so other streams keep flowing.
  void StopReading(int32_t stream);
  // Consumes what was held, so WINDOW_UPDATEs go out (with the next pump).
  void ResumeReading(int32_t stream);

  // Pumps I/O (sends what nghttp2 wants to send, reads and feeds what arrives) until done() is
  // true, the connection closed, or the timeout passed. Returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);
  // Until everything nghttp2 can send now is written (reading meanwhile).
  bool Flush(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool WaitForBody(int32_t stream, std::string_view needle, std::chrono::milliseconds timeout);
  bool WaitForClose(int32_t stream, std::chrono::milliseconds timeout);
  bool WaitForSettings(std::chrono::milliseconds timeout);  // The server's first SETTINGS.
  bool WaitForGoaway(std::chrono::milliseconds timeout);
  bool WaitForConnectionClose(std::chrono::milliseconds timeout);  // Peer closed the connection.

  // REQUIRES: `stream` came from Request or StartRequest (throws std::out_of_range otherwise).
  const H2Response& response(int32_t stream) const;
  std::optional<H2Goaway> goaway() const;  // The last one received.
  const std::vector<H2Goaway>& goaways() const { return goaways_; }
  // The connection is over: the peer closed it, I/O failed, nghttp2 gave up on it, or Close().
  bool connection_closed() const { return closed_; }
  // Why the connection ended, when it was not the peer's clean close; "" otherwise.
  const std::string& error() const { return error_; }
  // Remote (server) settings, e.g. NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS: as received, or
  // nghttp2's assumptions until WaitForSettings (the RFC's initial values, but 100 streams).
  // nghttp2 keeps to MAX_CONCURRENT_STREAMS: requests past it wait in its queue, unsent.
  uint32_t remote_setting(nghttp2_settings_id id) const;
  // TCP FIN (TLS close_notify first) when !reset, else RST. No GOAWAY: to send one first, call
  // nghttp2_session_terminate_session(session(), code) and Flush().
  void Close(bool reset = false);
  nghttp2_session* session() { return session_; }

 private:
  struct Callbacks;  // nghttp2's callbacks, reaching into the state below.
  // A request body not yet taken by nghttp2, and whether the test has ended it.
  struct OutgoingBody {
    std::string data;
    size_t offset = 0;
    bool ended = false;
    bool deferred = false;  // nghttp2 was told there is nothing yet; resume it on more.
  };

  void Connect(uint16_t port);
  void Handshake(uint16_t port, const TlsClient& tls);
  void Release();
  int32_t Submit(std::string_view method, std::string_view path, const H2Fields& headers,
                 bool with_body);
  // The pump's steps: false when the connection is over (closed_ set, error_ saying why).
  bool TakeOutput();
  bool WriteSome();
  bool ReadSome();
  void Fail(std::string why);

  H2Options options_;
  int fd_ = -1;
  std::unique_ptr<TlsClientState> tls_;
  nghttp2_session* session_ = nullptr;
  std::string unsent_;  // Taken from nghttp2, not yet taken by the socket.
  bool closed_ = false;
  std::string error_;
  bool settings_received_ = false;
  std::map<int32_t, H2Response> responses_;
  std::map<int32_t, bool> in_trailers_;  // Per stream: the header block being read is trailers.
  std::set<int32_t> rst_received_;
  std::set<int32_t> reset_by_us_;
  std::map<int32_t, OutgoingBody> bodies_;
  std::map<int32_t, size_t> held_;  // Streams StopReading holds: bytes not yet consumed.
  std::vector<H2Goaway> goaways_;
};

}  // namespace apim::testing
