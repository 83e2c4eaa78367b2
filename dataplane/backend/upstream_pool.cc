#include "dataplane/backend/upstream_pool.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include "dataplane/backend/backend_connect.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// True while the backend has not closed its side: a peek that would block means no EOF is queued.
bool StillOpen(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

asio::awaitable<std::pair<beast::error_code, UpstreamPool::Lease>> UpstreamPool::Acquire(
    const Backend& backend, std::chrono::milliseconds connect_timeout, bool fresh_only) {
  if (!fresh_only) {
    auto found = idle_.find(Key(backend));
    const auto now = std::chrono::steady_clock::now();
    while (found != idle_.end() && !found->second.empty()) {
      Idle idle = std::move(found->second.back());
      found->second.pop_back();
      if (now - idle.since < max_idle_ && StillOpen(idle.stream->socket())) {
        Lease lease;
        lease.stream = std::move(idle.stream);
        lease.reused = true;
        co_return std::pair{beast::error_code{}, std::move(lease)};
      }
    }
  }

  auto socket = std::make_unique<tcp::socket>(executor_);
  beast::error_code connect_error;
  // An address needs no resolver (whose lookups run on a helper thread and cost milliseconds).
  beast::error_code not_an_address;
  const asio::ip::address address = asio::ip::make_address(backend.host, not_an_address);
  if (!not_an_address) {
    const tcp::endpoint endpoint(address, static_cast<uint16_t>(std::stoi(backend.port)));
    connect_error = co_await ConnectToBackend(*socket, endpoint, connect_timeout);
  } else {
    tcp::resolver resolver(executor_);
    auto [resolve_error, endpoints] =
        co_await resolver.async_resolve(backend.host, backend.port, kNoThrow);
    if (resolve_error) co_return std::pair{resolve_error, Lease{}};
    connect_error = asio::error::host_not_found;
    for (const auto& entry : endpoints) {
      connect_error = co_await ConnectToBackend(*socket, entry.endpoint(), connect_timeout);
      if (!connect_error || connect_error == beast::error::timeout) break;
    }
  }
  if (connect_error) co_return std::pair{connect_error, Lease{}};
  Lease lease;
  if (!backend.tls) {
    lease.stream = std::make_unique<SocketStream>(std::move(*socket));
    co_return std::pair{beast::error_code{}, std::move(lease)};
  }
  SslPtr ssl =
      backend.tls_context->NewConnection(socket->native_handle(), backend.host, backend.port);
  lease.stream = std::make_unique<SocketStream>(std::move(*socket), std::move(ssl));
  beast::error_code handshake_error =
      co_await lease.stream->Handshake(connect_timeout, lease.tls_failure, &HandshakeFailure);
  if (handshake_error) {
    lease.stream.reset();
    co_return std::pair{handshake_error, std::move(lease)};
  }
  lease.handshake =
      SSL_session_reused(lease.stream->ssl()) ? Handshake::kResumed : Handshake::kFull;
  co_return std::pair{beast::error_code{}, std::move(lease)};
}

void UpstreamPool::Release(const Backend& backend, std::unique_ptr<SocketStream> stream) {
  std::vector<Idle>& idle = idle_[Key(backend)];
  if (idle.size() >= max_idle_per_backend_) return;  // Closed by the unique_ptr.
  idle.push_back(Idle{std::move(stream), std::chrono::steady_clock::now()});
}

}  // namespace apim::dataplane
