#include "tests/support/scripted_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace apim::testing {
namespace {

// A listening socket on 127.0.0.1 with an ephemeral port.
int ListenOnLoopback(int backlog, uint16_t* port) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(listener, backlog) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (listener >= 0) ::close(listener);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  *port = ntohs(address.sin_port);
  return listener;
}

// Request bodies larger than this are not waited for (nor recorded).
constexpr size_t kMaxRecordedBody = 64 * 1024;

// The length of the first complete request in `bytes` (head plus a small Content-Length body),
// or nothing while it is incomplete. `skip` is set to the part of a large body not recorded.
std::optional<size_t> CompleteRequest(const std::string& bytes, size_t* skip) {
  const size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  std::string head = bytes.substr(0, head_end + 2);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  size_t body = 0;
  if (const size_t at = head.find("\r\ncontent-length:"); at != std::string::npos) {
    body = std::strtoull(head.c_str() + at + 17, nullptr, 10);
  }
  *skip = 0;
  if (body > kMaxRecordedBody) {
    *skip = body;
    body = 0;
  }
  const size_t total = head_end + 4 + body;
  if (bytes.size() < total) return std::nullopt;
  return total;
}

void SendAll(int descriptor, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(descriptor, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // The gateway went away: what it received is what the test sees.
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

LoopbackListener::LoopbackListener(int backlog) { listener_ = ListenOnLoopback(backlog, &port_); }

LoopbackListener::~LoopbackListener() {
  for (int descriptor : accepted_) ::close(descriptor);
  ::close(listener_);
}

int LoopbackListener::Accept(std::chrono::milliseconds timeout) {
  pollfd readable{listener_, POLLIN, 0};
  if (::poll(&readable, 1, static_cast<int>(timeout.count())) != 1) return -1;
  const int accepted = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
  if (accepted >= 0) accepted_.push_back(accepted);
  return accepted;
}

struct ScriptedBackend::Connection {
  int descriptor = -1;      // -1 once closed.
  std::string unparsed;     // Received bytes not yet taken as a request.
  size_t body_to_skip = 0;  // Of a large request body, bytes still to come.
  bool answering = true;    // False after an action that ends the script for it.
  bool closed = false;      // By the gateway, or reset by the script.
};

ScriptedBackend::ScriptedBackend(Action action)
    : ScriptedBackend(Script([action](const std::string&) { return action; })) {}

ScriptedBackend::ScriptedBackend(Script script) : script_(std::move(script)) {
  listener_ = ListenOnLoopback(128, &port_);
  wake_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_ < 0) {
    ::close(listener_);
    throw std::runtime_error("eventfd failed");
  }
  thread_ = std::thread([this] { Serve(); });
}

ScriptedBackend::~ScriptedBackend() {
  const uint64_t one = 1;
  (void)::write(wake_, &one, sizeof one);
  thread_.join();
  for (Connection& connection : connections_) {
    if (connection.descriptor >= 0) ::close(connection.descriptor);
  }
  ::close(wake_);
  ::close(listener_);
}

size_t ScriptedBackend::connections() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

std::vector<ScriptedBackend::Request> ScriptedBackend::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool ScriptedBackend::AwaitClosedByGateway(size_t index, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(
      lock, timeout, [&] { return index < connections_.size() && connections_[index].closed; });
}

void ScriptedBackend::Serve() {
  for (;;) {
    std::vector<pollfd> watched{{wake_, POLLIN, 0}, {listener_, POLLIN, 0}};
    std::vector<size_t> indexes;  // Of the connection behind each further entry.
    {
      std::lock_guard lock(mutex_);
      for (size_t i = 0; i < connections_.size(); ++i) {
        if (connections_[i].descriptor < 0) continue;
        watched.push_back({connections_[i].descriptor, POLLIN, 0});
        indexes.push_back(i);
      }
    }
    if (::poll(watched.data(), watched.size(), -1) < 0) continue;  // EINTR.
    if (watched[0].revents != 0) return;
    if (watched[1].revents & POLLIN) {
      const int accepted = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted >= 0) {
        std::lock_guard lock(mutex_);
        connections_.emplace_back().descriptor = accepted;
        changed_.notify_all();
      }
    }
    for (size_t k = 0; k < indexes.size(); ++k) {
      if (watched[k + 2].revents == 0) continue;
      char buffer[16384];
      const ssize_t n = ::recv(watched[k + 2].fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      std::lock_guard lock(mutex_);
      Connection& connection = connections_[indexes[k]];
      if (n <= 0) {
        ::close(connection.descriptor);
        connection.descriptor = -1;
        connection.closed = true;
      } else if (connection.answering) {
        connection.unparsed.append(buffer, static_cast<size_t>(n));
        HandleRequests(connection, indexes[k]);
      }
      changed_.notify_all();
    }
  }
}

void ScriptedBackend::HandleRequests(Connection& connection, size_t index) {
  while (connection.answering && connection.descriptor >= 0) {
    if (connection.body_to_skip > 0) {
      const size_t skipped = std::min(connection.body_to_skip, connection.unparsed.size());
      connection.unparsed.erase(0, skipped);
      connection.body_to_skip -= skipped;
      if (connection.body_to_skip > 0) return;
    }
    size_t skip = 0;
    const std::optional<size_t> length = CompleteRequest(connection.unparsed, &skip);
    if (!length) return;
    std::string request = connection.unparsed.substr(0, *length);
    connection.unparsed.erase(0, *length);
    connection.body_to_skip = skip;
    requests_.push_back(Request{index, request});
    const Action action = script_(request);
    switch (action.kind) {
      case Action::Kind::kSend:
        SendAll(connection.descriptor, action.bytes);
        break;
      case Action::Kind::kSendAndClose:
      case Action::Kind::kClose:
        SendAll(connection.descriptor, action.bytes);
        ::shutdown(connection.descriptor, SHUT_WR);
        connection.answering = false;
        break;
      case Action::Kind::kReset: {
        linger hard{1, 0};
        ::setsockopt(connection.descriptor, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        ::close(connection.descriptor);
        connection.descriptor = -1;
        connection.closed = true;
        connection.answering = false;
        break;
      }
      case Action::Kind::kSilent:
        connection.answering = false;
        break;
    }
  }
}

}  // namespace apim::testing
