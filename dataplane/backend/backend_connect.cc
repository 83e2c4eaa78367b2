#include "dataplane/backend/backend_connect.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

beast::error_code LastError() { return {errno, asio::error::get_system_category()}; }

// Why the handshake failed (ECONNREFUSED, ETIMEDOUT...), or no error.
beast::error_code PendingError(int descriptor) {
  int pending = 0;
  socklen_t size = sizeof pending;
  if (::getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &pending, &size) != 0) return LastError();
  return {pending, asio::error::get_system_category()};
}

enum class Handshake { kDone, kFailed, kInProgress };

Handshake HandshakeState(int descriptor) {
  pollfd writable{descriptor, POLLOUT, 0};
  if (::poll(&writable, 1, 0) < 0) return Handshake::kFailed;
  if (writable.revents & (POLLERR | POLLHUP)) return Handshake::kFailed;
  return writable.revents & POLLOUT ? Handshake::kDone : Handshake::kInProgress;
}

}  // namespace

asio::awaitable<beast::error_code> ConnectToBackend(tcp::socket& socket,
                                                    const tcp::endpoint& endpoint,
                                                    std::chrono::milliseconds timeout) {
  const int descriptor = ::socket(endpoint.protocol().family(),
                                  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (descriptor < 0) co_return LastError();
  const int on = 1;
  ::setsockopt(descriptor, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // Latency, not required.
  Handshake handshake = Handshake::kDone;
  if (::connect(descriptor, endpoint.data(), endpoint.size()) != 0) {
    if (errno != EINPROGRESS) {
      const beast::error_code error = LastError();
      ::close(descriptor);
      co_return error;
    }
    handshake = HandshakeState(descriptor);
  }
  if (handshake == Handshake::kFailed) {
    beast::error_code error = PendingError(descriptor);
    if (!error) error = asio::error::connection_refused;
    ::close(descriptor);
    co_return error;
  }

  beast::error_code error;
  socket.assign(endpoint.protocol(), descriptor, error);
  if (error) {
    ::close(descriptor);
    co_return error;
  }
  if (handshake == Handshake::kDone) co_return error;

  // The handshake takes a round trip: wait for it, then register the socket afresh so that the
  // wait for writability is not re-armed with every later wait.
  {
    SocketDeadline deadline(socket, timeout);
    std::tie(error) =
        co_await socket.async_wait(tcp::socket::wait_write, asio::as_tuple(asio::use_awaitable));
    if (deadline.expired()) error = beast::error::timeout;
  }
  if (!error) error = PendingError(descriptor);
  if (!error) {
    const int connected = socket.release(error);
    if (!error) {
      socket.assign(endpoint.protocol(), connected, error);
      if (error) ::close(connected);
      co_return error;
    }
  }
  beast::error_code ignored;
  socket.close(ignored);
  co_return error;
}

}  // namespace apim::dataplane
