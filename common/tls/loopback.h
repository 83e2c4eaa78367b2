#pragma once
// Whether an address is this machine's loopback, where plaintext cannot be read by anyone else.

#include <string_view>

namespace apim::tls {

// `target` is HOST:PORT, [IPV6]:PORT, or a gRPC target with a scheme (dns:///, ipv4:, ipv6:,
// unix:). Loopback: localhost, 127.0.0.0/8, ::1 and Unix sockets. Any other name is not, since
// it may resolve anywhere.
bool IsLoopback(std::string_view target);

}  // namespace apim::tls
