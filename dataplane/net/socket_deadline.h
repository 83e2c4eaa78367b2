#pragma once
// A deadline for the operations pending on a socket: if they are still running when it passes,
// they are cancelled (the socket stays open, so an error response can still be written), and
// expired() says so afterwards. Cheaper than racing a second coroutine, and unlike a
// beast::tcp_stream expiry it neither closes the socket nor costs memory while disarmed.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>

namespace apim::dataplane {

class SocketDeadline {
 public:
  SocketDeadline(boost::asio::ip::tcp::socket& socket, std::chrono::steady_clock::duration timeout);
  // Disarms; a handler still queued then does nothing.
  ~SocketDeadline();
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  bool expired() const { return state_->expired; }

 private:
  struct State {
    bool armed = true;
    bool expired = false;
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace apim::dataplane
