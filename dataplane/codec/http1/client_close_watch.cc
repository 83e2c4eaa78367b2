#include "dataplane/codec/http1/client_close_watch.h"

#include <algorithm>
#include <boost/asio/buffer.hpp>

namespace apim::dataplane {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

ClientCloseWatch::~ClientCloseWatch() {
  state_->active = false;
  boost::system::error_code ignored;
  client_.socket().cancel(ignored);
}

void ClientCloseWatch::Watch(const std::shared_ptr<State>& state, SocketStream::Wait wait) {
  // TLS may need to write to read on (rarely); otherwise it is the socket becoming readable.
  state->client.socket().async_wait(
      wait == SocketStream::Wait::kWritable ? tcp::socket::wait_write : tcp::socket::wait_read,
      [state](const boost::system::error_code& error) { OnReadable(state, error); });
}

void ClientCloseWatch::OnReadable(const std::shared_ptr<State>& state,
                                  const boost::system::error_code& error) {
  if (error || !state->active) return;
  const size_t room = state->limit - std::min(state->limit, state->pipelined.size());
  // Read into the stack so that the kept bytes cost only their size; one byte more than the
  // room tells a client that sends too much from one that fills it.
  char bytes[4096];
  const SocketStream::Tried tried = state->client.TryRead(bytes, std::min(room + 1, sizeof bytes));
  if (tried.bytes == 0 && tried.wait != SocketStream::Wait::kNone) {
    return Watch(state, tried.wait);
  }
  if (tried.bytes > 0 && tried.bytes <= room) {
    asio::buffer_copy(state->pipelined.prepare(tried.bytes), asio::buffer(bytes, tried.bytes));
    state->pipelined.commit(tried.bytes);
    return Watch(state);
  }
  state->overrun = tried.bytes > 0;
  state->client_gone = tried.bytes == 0;
  boost::system::error_code ignored;
  state->upstream.close(ignored);
}

}  // namespace apim::dataplane
