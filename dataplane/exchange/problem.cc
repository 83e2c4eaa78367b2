#include "dataplane/exchange/problem.h"

#include <nlohmann/json.hpp>
#include <string>

namespace apim::dataplane {

void PreparePayload(http::response<http::string_body>& response) {
  const unsigned status = response.result_int();
  if (status < 200 || status == 204 || status == 304) {
    // No body, and no framing headers either (RFC 9110 8.6: no Content-Length on a 1xx or 204).
    response.body().clear();
    response.erase(http::field::content_length);
    response.erase(http::field::transfer_encoding);
    return;
  }
  response.prepare_payload();
}

http::response<http::string_body> Problem(http::status status, std::string_view type,
                                          std::string_view title, std::string_view detail,
                                          unsigned version) {
  nlohmann::json body = {{"type", "urn:apim:problem:" + std::string(type)},
                         {"title", title},
                         {"status", static_cast<unsigned>(status)},
                         {"detail", detail}};
  http::response<http::string_body> response{status, version};
  response.set(http::field::content_type, "application/problem+json");
  response.set(http::field::cache_control, "no-store");
  response.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  PreparePayload(response);
  return response;
}

}  // namespace apim::dataplane
