#include "dataplane/admin/admin_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "dataplane/exchange/problem.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

http::response<http::string_body> Answer(const http::request<http::string_body>& request,
                                         const SnapshotStore& snapshots, Metrics& metrics) {
  const std::string_view path = request.target().substr(0, request.target().find('?'));
  auto text = [&](http::status status, std::string body, const char* type = "text/plain") {
    http::response<http::string_body> response{status, request.version()};
    response.set(http::field::content_type, type);
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
  };
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    return Problem(http::status::method_not_allowed, "method-not-allowed", "Method not allowed",
                   "the admin endpoints answer GET only", request.version());
  }
  if (path == "/healthz") return text(http::status::ok, "ok\n");
  if (path == "/readyz") {
    if (metrics.draining.load()) return text(http::status::service_unavailable, "draining\n");
    return snapshots.Current() ? text(http::status::ok, "ready\n")
                               : text(http::status::service_unavailable, "no configuration\n");
  }
  if (path == "/metrics") {
    return text(http::status::ok, metrics.RenderPrometheus(), "text/plain; version=0.0.4");
  }
  return Problem(http::status::not_found, "not-found", "Not found",
                 "admin endpoints: /healthz, /readyz, /metrics", request.version());
}

asio::awaitable<void> ServeAdminConnection(tcp::socket socket, const SnapshotStore& snapshots,
                                           Metrics& metrics) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> request;
    stream.expires_after(std::chrono::seconds(30));
    auto [read_error, read] = co_await http::async_read(stream, buffer, request, kNoThrow);
    if (read_error) break;
    auto response = Answer(request, snapshots, metrics);
    response.keep_alive(request.keep_alive());
    auto [write_error, written] = co_await http::async_write(stream, response, kNoThrow);
    if (write_error || !request.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

asio::awaitable<void> ServeAdmin(tcp::acceptor& acceptor, const SnapshotStore& snapshots,
                                 Metrics& metrics) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kNoThrow);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) continue;
    asio::co_spawn(acceptor.get_executor(),
                   ServeAdminConnection(std::move(socket), snapshots, metrics), asio::detached);
  }
}

}  // namespace apim::dataplane
