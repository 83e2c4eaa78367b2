#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <memory>

#include "dataplane/net/socket_stream.h"

namespace apim::dataplane {

// While a response is relayed, watches the client socket: if the client closes or resets its
// connection, the backend connection is closed at once, which ends the relay's wait for the
// backend. What the client sends meanwhile (a pipelined request) is kept for after the response,
// up to `limit` bytes; a client that sends more has the relay ended, so that no stream lives on
// unwatched. A plain handler rather than a second coroutine keeps an open stream small.
class ClientCloseWatch {
 public:
  ClientCloseWatch(SocketStream& client, boost::asio::ip::tcp::socket& upstream,
                   boost::beast::flat_buffer& pipelined, size_t limit)
      : client_(client), state_(std::make_shared<State>(client, upstream, pipelined, limit)) {
    Watch(state_);
  }
  // Stops watching; the handler may still run later, and then does nothing.
  ~ClientCloseWatch();
  bool client_gone() const { return state_->client_gone; }
  bool overrun() const { return state_->overrun; }

 private:
  struct State {
    State(SocketStream& client, boost::asio::ip::tcp::socket& upstream,
          boost::beast::flat_buffer& pipelined, size_t limit)
        : client(client), upstream(upstream), pipelined(pipelined), limit(limit) {}
    SocketStream& client;
    boost::asio::ip::tcp::socket& upstream;
    boost::beast::flat_buffer& pipelined;
    const size_t limit;
    bool active = true;
    bool client_gone = false;
    bool overrun = false;
  };

  static void Watch(const std::shared_ptr<State>& state,
                    SocketStream::Wait wait = SocketStream::Wait::kReadable);

  static void OnReadable(const std::shared_ptr<State>& state,
                         const boost::system::error_code& error);

  SocketStream& client_;
  std::shared_ptr<State> state_;
};

}  // namespace apim::dataplane
