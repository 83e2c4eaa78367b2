#pragma once
// When gRPC cannot connect over TLS it says only UNAVAILABLE. This makes one TLS handshake of
// its own with the same settings to tell why, in words a user can act on: the server's
// certificate is not trusted (and why), names another host, or the server wants a client
// certificate or refused ours.

#include <chrono>
#include <string>

#include "common/tls/client_tls.h"

namespace apim::tls {

// Why a TLS handshake with `target` (HOST:PORT) fails with `options`; empty when it succeeds,
// when the server cannot be reached at all, or when TLS is not enabled. Bounded by `timeout`.
std::string DiagnoseHandshake(const std::string& target, const ClientTls& options,
                              std::chrono::milliseconds timeout = std::chrono::seconds(3));

}  // namespace apim::tls
