#include "dataplane/codec/http2/http2_fields.h"

#include <algorithm>
#include <cctype>

namespace apim::dataplane {

void AddRequestField(http::request_header<>& request, std::string_view name,
                     std::string_view value) {
  if (name == ":method") {
    request.method_string(value);
  } else if (name == ":path") {
    request.target(value);
  } else if (name == ":authority") {
    // Pseudo-fields come first (nghttp2 checks): a Host field, if any, follows and replaces it.
    request.set(http::field::host, value);
  } else if (name.starts_with(':')) {
    // :scheme (the gateway forwards by its own), :protocol (no extended CONNECT).
  } else if (name == "host") {
    request.set(http::field::host, value);
  } else if (name == "cookie" && request.count(http::field::cookie) > 0) {
    // RFC 9113 section 8.2.3: an HTTP/1.1 server expects one Cookie field.
    std::string joined(request[http::field::cookie]);
    joined.append("; ").append(value);
    request.set(http::field::cookie, joined);
  } else {
    request.insert(name, value);
  }
}

ResponseFields::ResponseFields(unsigned status, const http::fields& fields, bool drop_length) {
  strings_.reserve(2 * (std::distance(fields.begin(), fields.end()) + 1));
  const auto add = [&](std::string name, std::string_view value) {
    strings_.push_back(std::move(name));
    strings_.emplace_back(value);
  };
  add(":status", std::to_string(status));
  for (const auto& field : fields) {
    switch (field.name()) {
      case http::field::connection:
      case http::field::keep_alive:
      case http::field::proxy_connection:
      case http::field::transfer_encoding:
      case http::field::upgrade:
      case http::field::te:
        continue;
      case http::field::content_length:
        if (drop_length) continue;
        break;
      default:
        break;
    }
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    add(std::move(name), field.value());
  }
  // The strings no longer move: point at them.
  nv_.reserve(strings_.size() / 2);
  for (size_t i = 0; i < strings_.size(); i += 2) {
    nv_.push_back({reinterpret_cast<uint8_t*>(strings_[i].data()),
                   reinterpret_cast<uint8_t*>(strings_[i + 1].data()), strings_[i].size(),
                   strings_[i + 1].size(), NGHTTP2_NV_FLAG_NONE});
  }
}

}  // namespace apim::dataplane
