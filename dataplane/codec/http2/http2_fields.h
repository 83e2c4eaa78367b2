#pragma once
// How header fields cross between HTTP/2 and the HTTP/1.1 messages the exchange works with
// (RFC 9113 section 8.2): requests gain a Host from :authority and one Cookie from many; responses
// lose the connection-specific fields HTTP/2 forbids, and every name is lower case.

#include <nghttp2/nghttp2.h>

#include <boost/beast/http.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace apim::dataplane {

namespace http = boost::beast::http;

// Adds one received field to `request`: the pseudo-fields set the method and target, :authority
// becomes Host (a Host field of the request's own wins); cookie crumbs are joined into one Cookie
// field with "; ".
void AddRequestField(http::request_header<>& request, std::string_view name,
                     std::string_view value);

// A response head as HTTP/2 fields: ":status" first, then its fields in lower case, without
// Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade and TE, and without
// Content-Length when `drop_length`. The strings live in the returned object.
class ResponseFields {
 public:
  ResponseFields(unsigned status, const http::fields& fields, bool drop_length);
  const nghttp2_nv* data() const { return nv_.data(); }
  size_t size() const { return nv_.size(); }

 private:
  std::vector<std::string> strings_;
  std::vector<nghttp2_nv> nv_;
};

}  // namespace apim::dataplane
