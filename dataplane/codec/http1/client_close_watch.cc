#include "dataplane/codec/http1/client_close_watch.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <cerrno>

namespace apim::dataplane {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

ClientCloseWatch::~ClientCloseWatch() {
  state_->active = false;
  boost::system::error_code ignored;
  client_.cancel(ignored);
}

void ClientCloseWatch::Watch(const std::shared_ptr<State>& state) {
  state->client.async_wait(tcp::socket::wait_read, [state](const boost::system::error_code& error) {
    OnReadable(state, error);
  });
}

void ClientCloseWatch::OnReadable(const std::shared_ptr<State>& state,
                                  const boost::system::error_code& error) {
  if (error || !state->active) return;
  const size_t room = state->limit - std::min(state->limit, state->pipelined.size());
  // Read into the stack so that the kept bytes cost only their size; one byte more than the
  // room tells a client that sends too much from one that fills it.
  char bytes[4096];
  const ssize_t n =
      ::recv(state->client.native_handle(), bytes, std::min(room + 1, sizeof bytes), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Watch(state);
  if (n > 0 && static_cast<size_t>(n) <= room) {
    const size_t got = static_cast<size_t>(n);
    asio::buffer_copy(state->pipelined.prepare(got), asio::buffer(bytes, got));
    state->pipelined.commit(got);
    return Watch(state);
  }
  state->overrun = n > 0;
  state->client_gone = n <= 0;
  boost::system::error_code ignored;
  state->upstream.close(ignored);
}

}  // namespace apim::dataplane
