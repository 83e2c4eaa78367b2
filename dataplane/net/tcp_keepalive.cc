#include "dataplane/net/tcp_keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

namespace apim::dataplane {

boost::system::error_code SetTcpKeepalive(int descriptor, const ProxyLimits& limits) {
  const int on = 1;
  const int idle = static_cast<int>(limits.tcp_keepalive_idle.count());
  const int interval = static_cast<int>(limits.tcp_keepalive_interval.count());
  const int count = limits.tcp_keepalive_count;
  if (::setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
      ::setsockopt(descriptor, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0) {
    return boost::system::error_code(errno, boost::system::system_category());
  }
  return {};
}

}  // namespace apim::dataplane
