#include "dataplane/codec/http1/connection.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/str_cat.h"
#include "dataplane/admin/access_log.h"
#include "dataplane/codec/http1/http1_downstream.h"
#include "dataplane/exchange/exchange.h"
#include "dataplane/exchange/problem.h"
#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

// Writes a problem for a request that could not even be parsed, then the connection closes.
awaitable<void> RejectUnparsable(SocketStream& client, SessionContext& context, http::status status,
                                 std::string_view type, std::string_view title, std::string detail,
                                 std::string client_ip) {
  auto response = Problem(status, type, title, detail);
  response.keep_alive(false);
  {
    SocketDeadline deadline(client.socket(), std::chrono::seconds(5));
    co_await http::async_write(client, response, kNoThrow);
  }
  AccessRecord record;
  record.client_ip = std::move(client_ip);
  record.status = static_cast<unsigned>(status);
  record.error = std::move(detail);
  context.metrics.CountRequest("", record.status);
  WriteAccessLog(record);
}

// Reads the next request's head into `parser`. On failure it answers what can be answered (408,
// 431, 400) and returns false: the connection then closes. Its own coroutine, so the temporaries
// of reading and rejecting are not kept in the frame of a long stream.
awaitable<bool> ReadRequestHead(SocketStream& client, beast::flat_buffer& buffer,
                                http::request_parser<http::buffer_body>& parser,
                                SessionContext& context, const std::string& client_ip) {
  // Waiting for a request may take up to the idle timeout; once it starts, its headers must be
  // complete within the header timeout.
  if (buffer.size() == 0) {
    // The tier's idle timeout, once a configuration is loaded.
    std::shared_ptr<const RuntimeSnapshot> snapshot = context.snapshots.Current();
    SocketDeadline idle(client.socket(), snapshot ? snapshot->routes.tier().idle_timeout
                                                  : context.limits.idle_timeout);
    if (boost::system::error_code waited = co_await client.WaitReadable(); waited) {
      co_return false;
    }
    auto [error, n] = co_await client.async_read_some(buffer.prepare(2048), kNoThrow);
    if (error) co_return false;
    buffer.commit(n);
  }
  parser.header_limit(static_cast<std::uint32_t>(context.limits.max_request_header_bytes));
  parser.body_limit(boost::none);
  beast::error_code error = ParseBuffered(parser, buffer);
  if (!error && !parser.is_header_done()) {
    SocketDeadline deadline(client.socket(), context.limits.request_header_timeout);
    std::tie(error, std::ignore) =
        co_await http::async_read_header(client, buffer, parser, kNoThrow);
    if (deadline.expired()) error = beast::error::timeout;
  }
  if (!error) {
    // Framing and routing that two parties could read differently are refused (RFC 9112 6.3,
    // 3.2): a Transfer-Encoding whose last coding is not chunked (Beast would read no body and
    // the body would be taken for a next request), and a missing or repeated Host.
    const auto& head = parser.get();
    std::string_view problem;
    if (head.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      problem = "Transfer-Encoding must end with chunked";
    } else if (parser.chunked() &&
               !beast::iequals(head[http::field::transfer_encoding], "chunked")) {
      // A coding before chunked (gzip, identity) would be dropped on the way: refused instead.
      problem = "Transfer-Encoding other than chunked alone is not accepted";
    } else if (head.count(http::field::host) > 1) {
      problem = "more than one Host header";
    } else if (head.version() >= 11 && head.count(http::field::host) == 0) {
      problem = "HTTP/1.1 requests need a Host header";
    }
    if (problem.empty()) co_return true;
    co_await RejectUnparsable(client, context, http::status::bad_request, "bad-request",
                              "Malformed request", std::string(problem), client_ip);
    co_return false;
  }
  if (error == http::error::header_limit) {
    co_await RejectUnparsable(
        client, context, http::status::request_header_fields_too_large, "header-too-large",
        "Request headers too large",
        StrCat("request headers exceed ", context.limits.max_request_header_bytes, " bytes"),
        client_ip);
  } else if (error == beast::error::timeout) {
    co_await RejectUnparsable(client, context, http::status::request_timeout, "header-timeout",
                              "Request timeout",
                              StrCat("request headers were not complete within ",
                                     context.limits.request_header_timeout.count(), " s"),
                              client_ip);
  } else if (error != http::error::end_of_stream && error != asio::error::eof &&
             error != asio::error::connection_reset && client.tls_error().empty()) {
    co_await RejectUnparsable(client, context, http::status::bad_request, "bad-request",
                              "Malformed request", error.message(), client_ip);
  }
  co_return false;
}

}  // namespace

awaitable<void> ServeHttp1(SocketStream& client, beast::flat_buffer& buffer,
                           const std::string& client_ip, SessionContext& context) {
  // Every exchange ends through Run, or through Fail when something threw (a bug, or input no
  // check foresaw): either way the client is answered if it can be, and the exchange is logged
  // and counted. (A catch handler cannot co_await, hence the message carried out of it.)
  // This frame lives as long as the connection: the request's parser is on the heap, and the
  // downstream frees it once the request was forwarded whole.
  for (;;) {
    auto parser = std::make_unique<http::request_parser<http::buffer_body>>();
    bool read = false;
    try {
      read = co_await ReadRequestHead(client, buffer, *parser, context, client_ip);
    } catch (const std::exception& error) {
      ++context.metrics.session_failures;
      spdlog::error("reading a request from {}: unexpected error: {}", client_ip, error.what());
    }
    if (!read) break;
    // Memory held across a long stream is what limits a worker: give back what parsing took.
    if (buffer.size() == 0) buffer.shrink_to_fit();
    Http1Downstream downstream(client, buffer, std::move(parser), context.limits);
    Exchange exchange(context, downstream, client_ip);
    AfterExchange after = AfterExchange::kClose;
    bool failed = false;
    std::string failure;
    try {
      after = co_await exchange.Run();
    } catch (const std::exception& error) {
      failed = true;
      failure = error.what();
    }
    if (failed) {
      co_await exchange.Fail(failure);
      break;
    }
    if (after == AfterExchange::kClose || context.draining.load()) break;
  }
}

}  // namespace apim::dataplane
