#pragma once
// One HTTP/1.1 client connection, served by one coroutine: read a request head, run its
// exchange, and loop to the next request while the connection is kept alive.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <string>

#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

// Serves a client connection (TLS already established, if any) that speaks HTTP/1.1 until it
// closes; `received` holds what was read of it already (and is its read buffer from then on).
boost::asio::awaitable<void> ServeHttp1(SocketStream& client, boost::beast::flat_buffer& received,
                                        const std::string& client_ip, SessionContext& context);

}  // namespace apim::dataplane
