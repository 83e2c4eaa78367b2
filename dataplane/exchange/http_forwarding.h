#pragma once
// How a message changes as it crosses the gateway (RFC 9110 section 7.6): hop-by-hop headers,
// including those named in Connection, stay behind; X-Forwarded-For/-Proto/-Host are added.

#include <boost/beast/http.hpp>
#include <string_view>

namespace apim::dataplane {

namespace http = boost::beast::http;

// Copies every end-to-end header of `from` into `to`. Content-Length and Transfer-Encoding are
// left to the caller, which decides the framing of what it sends.
void CopyEndToEndHeaders(const http::fields& from, http::fields& to);

// Adds the X-Forwarded-* headers for a request received from `client_ip`, over TLS when
// `secure`, and removes a client's Forwarded and X-Real-IP.
void AddForwardedHeaders(const http::fields& original, std::string_view client_ip, bool secure,
                         http::fields& upstream);

// Removes a client's hop-by-hop headers: Connection, the fields it names and the standard ones,
// except the framing (Content-Length, Transfer-Encoding: the parser has read them, the forwarding
// sets them anew) and Host. Done before any policy runs, so that a client cannot name a header a
// policy adds (`Connection: close, X-Gateway-Secret`).
void RemoveHopByHopHeaders(http::fields& fields);

// True when the Content-Type is text/event-stream.
bool IsEventStream(const http::fields& fields);

// True for a WebSocket (or other protocol) upgrade request.
bool IsWebSocketUpgrade(const http::fields& fields);

// True when the request asks for an event stream (Accept: text/event-stream).
bool AcceptsEventStream(const http::fields& fields);

}  // namespace apim::dataplane
