#pragma once
// What a client connection speaks is settled here, before any codec sees it: TLS is established
// and the protocol it negotiated (ALPN h2 or HTTP/1.1) picks the codec; on the plaintext listener
// the first bytes tell an HTTP/2 connection preface (prior knowledge, h2c) from an HTTP/1.1
// request.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "dataplane/exchange/session_context.h"
#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

// Serves one accepted client connection until it closes; `peer` is the client's address as
// accept returned it. The socket comes with TCP_NODELAY and keepalive on, inherited from the
// listener; a client of the TLS listener comes with an SSL in accept state.
boost::asio::awaitable<void> ServeClient(SocketStream client, boost::asio::ip::tcp::endpoint peer,
                                         SessionContext& context);

}  // namespace apim::dataplane
