#pragma once
// Assembles the control plane: opens the store, settles the admin token, serves gRPC until
// SIGINT or SIGTERM, then shuts down gracefully.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "controlplane/config_discovery_service.h"
#include "controlplane/server_tls.h"

namespace apim::controlplane {

struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";
  std::string database_path = "apim.db";
  std::optional<std::string> admin_token;  // From --admin-token-file or APIM_ADMIN_TOKEN.
  std::string port_file;                   // If set, the bound port is written here once serving.
  DiscoveryLimits discovery;
  std::optional<ServerTlsFiles> tls;  // Plaintext without.
  bool allow_insecure = false;        // Plaintext on an address that is not loopback.
};

// Refuses plaintext on an address that is not loopback unless allow_insecure (then it warns).
absl::Status CheckTransportSecurity(const ServerOptions& options);

// Blocks until a shutdown signal (SIGINT, SIGTERM; SIGHUP re-reads the TLS files); returns an
// error if the server could not start.
absl::Status RunServer(const ServerOptions& options);

}  // namespace apim::controlplane
