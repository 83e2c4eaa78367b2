#pragma once
// TCP keepalive with the worker's timings, so a peer that vanished is noticed.

#include <boost/system/error_code.hpp>

#include "dataplane/exchange/session_context.h"

namespace apim::dataplane {

// Turns TCP keepalive on with the given timings. On a listening socket, Linux copies the setting
// to every connection it accepts.
boost::system::error_code SetTcpKeepalive(int descriptor, const ProxyLimits& limits);

}  // namespace apim::dataplane
