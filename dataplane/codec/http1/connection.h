#pragma once
// One HTTP/1.1 client connection, served by one coroutine: read a request head, run its
// exchange, and loop to the next request while the connection is kept alive.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "dataplane/exchange/session_context.h"

namespace apim::dataplane {

// Serves one accepted client connection; `peer` is the client's address as accept returned it.
// The socket comes with TCP_NODELAY and keepalive already on, inherited from the listener.
boost::asio::awaitable<void> ServeConnection(boost::asio::ip::tcp::socket socket,
                                             boost::asio::ip::tcp::endpoint peer,
                                             SessionContext& context);

}  // namespace apim::dataplane
