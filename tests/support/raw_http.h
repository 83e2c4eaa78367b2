#pragma once
// A deliberately plain HTTP client over a blocking loopback socket, for tests that must see the
// exact bytes a server writes and when (and also send malformed requests). Every read is bounded
// by a deadline, and a send the peer does not take within 10 s fails.

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace apim::testing {

// A TLS client's side of the handshake: the chain verified against `ca_file`, and the name
// against `server_name` unless `verify_name` is false; `server_name` sent as SNI unless empty;
// offering `alpn` (comma-separated, e.g. "h2,http/1.1"; empty offers none).
struct TlsClient {
  std::string server_name = "localhost";
  std::filesystem::path ca_file;
  std::string alpn = "http/1.1";
  bool verify_name = true;
};

// A TLS client's SSL on `fd` and its context, freed together: TLS 1.2 or later, the chain
// verified against `tls.ca_file`, SNI and the name as `tls` says, offering `alpn_wire` (ALPN's
// wire form; empty offers none). Throws if the CA file cannot be loaded.
struct TlsClientState {
  TlsClientState(int fd, const TlsClient& tls, const std::string& alpn_wire);
  ~TlsClientState();
  // Why SSL_connect, which returned `result`, failed.
  std::string HandshakeFailure(int result) const;
  TlsClientState(const TlsClientState&) = delete;
  TlsClientState& operator=(const TlsClientState&) = delete;
  SSL_CTX* context;
  SSL* ssl = nullptr;
};

// What OpenSSL's error queue holds (taken off it), for a test's message.
std::string OpenSslError();

// "h2,http/1.1" in ALPN's wire form: each name after its length.
std::string AlpnWire(const std::string& list);

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; throws on failure.
  explicit RawConnection(uint16_t port);
  // The same over TLS; throws, saying why, if the handshake fails.
  RawConnection(uint16_t port, const TlsClient& tls);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Throws if the peer closed, or took nothing for 10 s.
  void Send(std::string_view bytes);
  // Reads until `needle` appears in everything read so far (returned whole), the peer closes, or
  // the timeout passes; nullopt unless the needle was found.
  std::optional<std::string> ReadUntil(std::string_view needle, std::chrono::milliseconds timeout);
  // Waits for the peer to close; true if it did within the timeout. Data read meanwhile is kept.
  bool WaitForClose(std::chrono::milliseconds timeout);
  // Everything read so far.
  const std::string& received() const { return received_; }
  // This end's port (the server sees the connection coming from it).
  uint16_t local_port() const;
  // Closes the socket abruptly (RST) when `reset`, else with a FIN (after close_notify on TLS).
  void Close(bool reset = false);

  // TLS: the subject (RFC 2253) of the certificate the server showed, and the protocol ALPN chose
  // ("" for none).
  std::string peer_subject() const;
  std::string alpn() const;
  bool session_reused() const;

 private:
  // One read with a deadline: false on timeout; sets closed_ on EOF or error.
  bool ReadOnce(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::unique_ptr<TlsClientState> tls_;
  bool closed_ = false;
  std::string received_;
};

// A GET (or other request without a body) and its whole response, on a fresh connection.
struct SimpleResponse {
  int status = 0;
  std::string head;  // Status line and headers.
  std::string body;  // De-chunked.
};
SimpleResponse HttpRequest(uint16_t port, std::string_view method, std::string_view target,
                           std::string_view extra_headers = "",
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The payload of a chunked body.
std::string Dechunk(std::string_view body);

// The number a flat JSON object gives `key` ("key":N), or 0 if it has none.
uint64_t JsonNumber(const std::string& json, const std::string& key);

// The value of a header in a response head (case-insensitive name), or empty.
std::string HeaderValue(std::string_view head, std::string_view name);

}  // namespace apim::testing
