#include "dataplane/problem.h"

#include <nlohmann/json.hpp>
#include <string>

namespace apim::dataplane {

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
  response.body() = body.dump() + "\n";
  response.prepare_payload();
  return response;
}

}  // namespace apim::dataplane
