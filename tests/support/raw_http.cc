#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace apim::testing {

RawConnection::RawConnection(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  // A peer that stops reading makes Send fail after this long instead of blocking for ever.
  timeval send_timeout{10, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
}

RawConnection::~RawConnection() { Close(); }

uint16_t RawConnection::local_port() const {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
  return ntohs(address.sin_port);
}

void RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool RawConnection::ReadOnce(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buffer[16384];
  ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
  if (n <= 0) {
    closed_ = true;
  } else {
    received_.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

std::optional<std::string> RawConnection::ReadUntil(std::string_view needle,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received_.find(needle) == std::string::npos) {
    if (closed_ || !ReadOnce(deadline)) return std::nullopt;
  }
  return received_;
}

bool RawConnection::WaitForClose(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    if (!ReadOnce(deadline)) return false;
  }
  return true;
}

void RawConnection::Close(bool reset) {
  if (fd_ < 0) return;
  if (reset) {
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  }
  ::close(fd_);
  fd_ = -1;
}

std::string Dechunk(std::string_view body) {
  std::string out;
  while (!body.empty()) {
    size_t line_end = body.find("\r\n");
    if (line_end == std::string_view::npos) break;
    size_t size = std::stoul(std::string(body.substr(0, line_end)), nullptr, 16);
    if (size == 0) break;
    out.append(body.substr(line_end + 2, size));
    body.remove_prefix(std::min(body.size(), line_end + 2 + size + 2));
  }
  return out;
}

uint64_t JsonNumber(const std::string& json, const std::string& key) {
  const std::string field = "\"" + key + "\":";
  const size_t at = json.find(field);
  return at == std::string::npos ? 0 : std::stoull(json.substr(at + field.size()));
}

std::string HeaderValue(std::string_view head, std::string_view name) {
  std::string lower_head(head);
  std::string lower_name(name);
  for (auto* text : {&lower_head, &lower_name}) {
    std::transform(text->begin(), text->end(), text->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  size_t at = lower_head.find("\r\n" + lower_name + ":");
  if (at == std::string::npos) return "";
  size_t start = at + 2 + name.size() + 1;
  size_t end = head.find("\r\n", start);
  std::string value(head.substr(start, end - start));
  value.erase(0, value.find_first_not_of(' '));
  return value;
}

SimpleResponse HttpRequest(uint16_t port, std::string_view method, std::string_view target,
                           std::string_view extra_headers, std::chrono::milliseconds timeout) {
  RawConnection connection(port);
  connection.Send(std::string(method) + " " + std::string(target) +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                  std::string(extra_headers) + "\r\n");
  connection.WaitForClose(timeout);
  const std::string& raw = connection.received();
  SimpleResponse response;
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return response;
  response.head = raw.substr(0, head_end + 2);
  if (raw.size() > 12) response.status = std::stoi(raw.substr(9, 3));
  std::string body = raw.substr(head_end + 4);
  response.body =
      HeaderValue(response.head, "transfer-encoding") == "chunked" ? Dechunk(body) : body;
  return response;
}

}  // namespace apim::testing
