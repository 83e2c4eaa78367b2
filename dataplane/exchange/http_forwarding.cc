#include "dataplane/exchange/http_forwarding.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace apim::dataplane {
namespace {

namespace beast = boost::beast;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool ListContains(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    item = Trim(item.substr(0, item.find(';')));
    if (beast::iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool IsHopByHop(http::field field) {
  switch (field) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::content_length:
      return true;
    default:
      return false;
  }
}

// The fields named by every Connection header, as one comma-separated list.
std::string ConnectionTokens(const http::fields& fields) {
  std::string tokens;
  for (auto range = fields.equal_range(http::field::connection); range.first != range.second;
       ++range.first) {
    tokens.append(range.first->value()).push_back(',');
  }
  return tokens;
}

// A standard hop-by-hop header, or one named in Connection (`connection_tokens`).
bool StaysBehind(const http::fields::value_type& header, std::string_view connection_tokens) {
  return IsHopByHop(header.name()) ||
         (!connection_tokens.empty() && ListContains(connection_tokens, header.name_string()));
}

}  // namespace

void CopyEndToEndHeaders(const http::fields& from, http::fields& to) {
  const std::string connection_tokens = ConnectionTokens(from);
  for (const auto& header : from) {
    if (!StaysBehind(header, connection_tokens)) to.insert(header.name_string(), header.value());
  }
}

void RemoveHopByHopHeaders(http::fields& fields) {
  const std::string connection_tokens = ConnectionTokens(fields);
  for (auto it = fields.begin(); it != fields.end();) {
    const http::field name = it->name();
    const bool framing = name == http::field::content_length ||
                         name == http::field::transfer_encoding || name == http::field::host;
    it = !framing && StaysBehind(*it, connection_tokens) ? fields.erase(it) : std::next(it);
  }
}

void AddForwardedHeaders(const http::fields& original, std::string_view client_ip, bool secure,
                         http::fields& upstream) {
  std::string forwarded_for(original["X-Forwarded-For"]);
  forwarded_for.append(forwarded_for.empty() ? "" : ", ").append(client_ip);
  upstream.set("X-Forwarded-For", forwarded_for);
  upstream.set("X-Forwarded-Proto", secure ? "https" : "http");
  // A client's own claims about where it comes from are not passed on as the gateway's.
  upstream.erase(http::field::forwarded);
  upstream.erase("X-Real-IP");
  if (auto host = original[http::field::host]; !host.empty()) {
    upstream.set("X-Forwarded-Host", host);
  }
}

bool IsEventStream(const http::fields& fields) {
  std::string_view type = fields[http::field::content_type];
  type = Trim(type.substr(0, type.find(';')));
  return beast::iequals(type, "text/event-stream");
}

bool IsWebSocketUpgrade(const http::fields& fields) {
  return ListContains(fields[http::field::upgrade], "websocket");
}

bool AcceptsEventStream(const http::fields& fields) {
  return ListContains(fields[http::field::accept], "text/event-stream");
}

}  // namespace apim::dataplane
