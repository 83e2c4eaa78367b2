#pragma once
// sse-load's HTTP/2 mode (--h2): one connection's share of the run's streams, multiplexed over an
// nghttp2 client session. One coroutine per connection, its state in the coroutine frame; within
// it a reader (socket -> nghttp2_session_mem_recv), a writer (nghttp2_session_mem_send -> socket)
// and the ramp (submitting each stream when it is due) run side by side on the thread's
// io_context. The client announces a 16 MiB stream window and a 1 GiB connection window, given
// back as soon as data is read, so that it never holds a stream back.
//
// Outcomes are counted per stream, as over HTTP/1.1: a connection that cannot be made, or that is
// not HTTP/2 (the server did not select h2 by ALPN; an h2c request answered in HTTP/1.x), fails
// each of its streams with the reason in `errors.first`; a connection lost mid-run closes its
// open streams early. Connect time and TLS handshakes are counted per connection.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <vector>

#include "bench/sse_load.h"
#include "bench/sse_load_thread.h"

namespace apim::bench {

struct H2Target {
  const LoopbackUrl* url = nullptr;
  boost::asio::ip::tcp::endpoint endpoint;
  boost::asio::ssl::context* tls = nullptr;  // https:// only; ALPN "h2" is offered per connection
};

// Runs one connection until `deadline`: connects when the first of its streams is due, opens
// stream i at `due[i]` (ascending) and records everything in `out`.
// REQUIRES: `due` is not empty; `target` and `out` outlive the coroutine.
boost::asio::awaitable<void> RunH2Connection(H2Target target,
                                             std::vector<LoadClock::time_point> due,
                                             LoadClock::time_point steady_from,
                                             LoadClock::time_point deadline, ThreadResults& out);

}  // namespace apim::bench
