#pragma once
// Small pieces the exchange's phases and codecs share: error-returning awaits, the body buffer
// size, a read buffer given room while a body is read, gauges held for a scope, the last resort
// for exceptions that escape a session.

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string>

namespace apim::dataplane {

namespace http = boost::beast::http;

inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

// Request bodies and buffered responses move through one buffer of this size.
inline constexpr size_t kBodyBufferBytes = 16 * 1024;
// The first read for a response head: a head and a small body.
inline constexpr size_t kHeadReadBytes = 4096;

using Clock = std::chrono::steady_clock;

inline std::chrono::microseconds Since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// Parses what `buffer` holds into `parser` now, consuming what it used. A request or response
// head (and a small body) nearly always arrives whole in one read: parsed here, it needs no
// asynchronous read, with its deadline and its trip through the event loop. Returns the parse
// error; needing more bytes is none (the asynchronous read that follows gets them).
template <typename Parser>
boost::beast::error_code ParseBuffered(Parser& parser, boost::beast::flat_buffer& buffer) {
  boost::beast::error_code error;
  if (buffer.size() == 0 || parser.is_done()) return error;
  buffer.consume(parser.put(buffer.data(), error));
  if (error == http::error::need_more) error = {};
  return error;
}

// Beast reads a body through a connection's read buffer, each read at most what that buffer has
// room for: 512 bytes once it has been given back after a head, so a megabyte took two thousand
// reads. While a body is read the buffer has a body buffer's worth of room; it is given back
// afterwards, so that an open stream which follows does not keep it.
class RoomToReadBody {
 public:
  explicit RoomToReadBody(boost::beast::flat_buffer& buffer) : buffer_(buffer) {
    buffer_.reserve(kBodyBufferBytes);
  }
  ~RoomToReadBody() {
    if (buffer_.size() == 0) buffer_.shrink_to_fit();
  }
  RoomToReadBody(const RoomToReadBody&) = delete;
  RoomToReadBody& operator=(const RoomToReadBody&) = delete;

 private:
  boost::beast::flat_buffer& buffer_;
};

// Counts one in a gauge (open connections, open streams) for as long as it lives, however the
// scope is left.
class GaugeHold {
 public:
  explicit GaugeHold(std::atomic<int64_t>& gauge) : gauge_(gauge) { ++gauge_; }
  ~GaugeHold() { --gauge_; }
  GaugeHold(const GaugeHold&) = delete;
  GaugeHold& operator=(const GaugeHold&) = delete;

 private:
  std::atomic<int64_t>& gauge_;
};

// The completion of a co_spawn'd session (a client connection, an HTTP/2 stream's exchange). The
// session answers and logs its own failures; an exception that escapes it anyway is logged here,
// as the last resort, under `what` ("a client connection").
inline auto LogWhatEscapes(const char* what) {
  return [what](std::exception_ptr escaped) {
    if (!escaped) return;
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& error) {
      spdlog::error("{} ended by an error: {}", what, error.what());
    } catch (...) {
      spdlog::error("{} ended by an unknown error", what);
    }
  };
}

}  // namespace apim::dataplane
