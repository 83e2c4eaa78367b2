#pragma once
// One HTTP/1.1 client connection, served by one coroutine: read a request head, run its
// exchange, and loop to the next request while the connection is kept alive.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

// Serves one accepted client connection; `peer` is the client's address as accept returned it.
// The socket comes with TCP_NODELAY and keepalive already on, inherited from the listener. A
// client of the TLS listener comes with an SSL in accept state: the handshake is made here.
boost::asio::awaitable<void> ServeConnection(SocketStream client,
                                             boost::asio::ip::tcp::endpoint peer,
                                             SessionContext& context);

}  // namespace apim::dataplane
