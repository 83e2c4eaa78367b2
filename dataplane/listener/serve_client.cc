#include "dataplane/listener/serve_client.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <cstring>
#include <string_view>

#include "dataplane/codec/http1/connection.h"
#include "dataplane/codec/http2/http2_connection.h"
#include "dataplane/config/served_certificates.h"
#include "dataplane/exchange/exchange_io.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

// RFC 9113 section 3.4: what a client that knows the server speaks HTTP/2 sends first. No HTTP/1
// request line starts like it.
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// TLS: the handshake, within the header timeout. A client that fails it (does not trust the
// certificate, speaks plaintext to the TLS port, offers nothing we accept) is counted and logged
// at debug level: it is the client's problem, and a scanner could fill the log otherwise.
awaitable<bool> AcceptTls(SocketStream& client, SessionContext& context,
                          const std::string& client_ip) {
  std::string failure;
  const beast::error_code error = co_await client.Handshake(context.limits.request_header_timeout,
                                                            failure, &ClientHandshakeFailure);
  if (!error) {
    ++(SSL_session_reused(client.ssl()) ? context.metrics.client_tls_resumed
                                        : context.metrics.client_tls_full);
    co_return true;
  }
  ++context.metrics.client_tls_failed;
  spdlog::debug("TLS handshake with {} failed: {}", client_ip, failure);
  co_return false;
}

bool NegotiatedHttp2(SSL* ssl) {
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &protocol, &length);
  return length == 2 && std::memcmp(protocol, "h2", 2) == 0;
}

// Reads the first bytes of a plaintext connection into `received` until they either are the
// HTTP/2 preface or cannot be. The first wait is the tier's idle timeout, as for any request;
// once bytes arrive the rest of the preface must follow within the header timeout. Nullopt when
// the client left or stayed silent.
awaitable<std::optional<bool>> ReadPreface(SocketStream& client, beast::flat_buffer& received,
                                           SessionContext& context) {
  std::shared_ptr<const RuntimeSnapshot> snapshot = context.snapshots.Current();
  const auto idle = snapshot ? snapshot->routes.tier().idle_timeout : context.limits.idle_timeout;
  for (;;) {
    const std::string_view so_far(static_cast<const char*>(received.data().data()),
                                  received.size());
    const size_t compared = std::min(so_far.size(), kHttp2Preface.size());
    if (so_far.substr(0, compared) != kHttp2Preface.substr(0, compared)) co_return false;
    if (compared == kHttp2Preface.size()) co_return true;
    SocketDeadline deadline(client.socket(),
                            received.size() == 0 ? idle : context.limits.request_header_timeout);
    auto [error, n] = co_await client.async_read_some(received.prepare(2048), kNoThrow);
    if (error) co_return std::nullopt;
    received.commit(n);
  }
}

// Which protocol the client speaks (true: HTTP/2), after the TLS handshake or from the first
// bytes of a plaintext connection; nullopt when the client failed the handshake, left or stayed
// silent. A coroutine of its own, so that a long connection does not keep its temporaries.
awaitable<std::optional<bool>> Negotiate(SocketStream& client, beast::flat_buffer& received,
                                         const std::string& client_ip, SessionContext& context) {
  std::optional<bool> http2 = false;
  if (client.ssl() != nullptr) {
    const bool secured = co_await AcceptTls(client, context, client_ip);
    http2 = secured ? std::optional<bool>(NegotiatedHttp2(client.ssl())) : std::nullopt;
  } else if (context.limits.http2) {
    http2 = co_await ReadPreface(client, received, context);
  }
  co_return http2;
}

awaitable<void> ServeHttp2Client(SocketStream& client, beast::flat_buffer& received,
                                 const std::string& client_ip, SessionContext& context) {
  ++context.metrics.http2_connections;
  std::string initial(static_cast<const char*>(received.data().data()), received.size());
  received = beast::flat_buffer();
  co_await ServeHttp2(client, std::move(initial), client_ip, context);
}

}  // namespace

awaitable<void> ServeClient(SocketStream client, asio::ip::tcp::endpoint peer,
                            SessionContext& context) {
  const std::string client_ip = peer.address().to_string();
  GaugeHold connection_count(context.metrics.active_connections);
  beast::flat_buffer received;
  const std::optional<bool> http2 = co_await Negotiate(client, received, client_ip, context);
  if (!http2) {
    client.Shutdown();
    co_return;
  }
  if (*http2) {
    co_await ServeHttp2Client(client, received, client_ip, context);
  } else {
    co_await ServeHttp1(client, received, client_ip, context);
  }
  client.Shutdown();
}

}  // namespace apim::dataplane
