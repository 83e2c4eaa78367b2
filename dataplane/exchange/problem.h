#pragma once
// Error responses as RFC 9457 problem details (application/problem+json): a type URI, a short
// title, the status, and a detail that says what happened to this request.

#include <boost/beast/http.hpp>
#include <string_view>

namespace apim::dataplane {

namespace http = boost::beast::http;

// Sets the framing of an answer the gateway makes (a problem, a policy's return-response). A
// status that forbids a body (1xx, 204, 304) goes without one instead of failing.
void PreparePayload(http::response<http::string_body>& response);

// The detail (and any text) may hold any bytes: invalid UTF-8 is replaced, never thrown on.
// `type` is a short slug, e.g. "no-api", made into "urn:apim:problem:no-api".
http::response<http::string_body> Problem(http::status status, std::string_view type,
                                          std::string_view title, std::string_view detail,
                                          unsigned version = 11);

}  // namespace apim::dataplane
