#pragma once
// Connects a socket to a backend so that the reactor watches it for reading only.
//
// Asio's own connect waits for the socket to become writable, and from then on asio keeps it
// registered for EPOLLOUT: every later wait re-arms it (EPOLL_CTL_MOD), which reports it
// writable at once, a spurious wake-up for every event of a stream. Here connect() is called
// before the socket is handed to the reactor. On loopback, and with any backend that answers
// within the call, the handshake is over when connect() returns, so there is nothing to wait
// for: one wake-up of the worker and half a dozen system calls fewer per new stream. Otherwise
// the socket waits to become writable and is then registered afresh.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>

namespace apim::dataplane {

// `socket` must not be open. On success it is connected to `endpoint`, non-blocking, with
// TCP_NODELAY; on failure it is closed again and the error says why (beast::error::timeout when
// the handshake did not finish within `timeout`).
boost::asio::awaitable<boost::beast::error_code> ConnectToBackend(
    boost::asio::ip::tcp::socket& socket, const boost::asio::ip::tcp::endpoint& endpoint,
    std::chrono::milliseconds timeout);

}  // namespace apim::dataplane
