#include "dataplane/net/socket_deadline.h"

namespace apim::dataplane {

SocketDeadline::SocketDeadline(boost::asio::ip::tcp::socket& socket,
                               std::chrono::steady_clock::duration timeout)
    : timer_(socket.get_executor(), timeout), state_(std::make_shared<State>()) {
  // The handler holds the state, not this object: it may run after this is destroyed.
  timer_.async_wait([state = state_, &socket](const boost::system::error_code& error) {
    if (error || !state->armed) return;
    state->expired = true;
    boost::system::error_code ignored;
    socket.cancel(ignored);
  });
}

SocketDeadline::~SocketDeadline() {
  state_->armed = false;
  timer_.cancel();
}

}  // namespace apim::dataplane
