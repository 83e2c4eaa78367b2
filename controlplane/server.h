#pragma once
// Assembles the control plane: opens the store, settles the admin token, serves gRPC until
// SIGINT or SIGTERM, then shuts down gracefully.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "controlplane/config_discovery_service.h"

namespace apim::controlplane {

struct ServerOptions {
  std::string listen_address = "127.0.0.1:50051";
  std::string database_path = "apim.db";
  std::optional<std::string> admin_token;  // From --admin-token-file or APIM_ADMIN_TOKEN.
  std::string port_file;                   // If set, the bound port is written here once serving.
  DiscoveryLimits discovery;
};

// Blocks until a shutdown signal; returns an error if the server could not start.
absl::Status RunServer(const ServerOptions& options);

}  // namespace apim::controlplane
