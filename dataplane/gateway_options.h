#pragma once
// apim-gateway's command line: its flags, their defaults, and the checks between them, as one
// function from the arguments to the options the worker runs with. The defaults that come from
// outside the command line are settled here too (the token from its file or the environment,
// the worker id from the host and process), so main() only runs what it is given.

#include <spdlog/common.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "dataplane/config/config_client.h"
#include "dataplane/listener/worker.h"

namespace apim::dataplane {

struct GatewayOptions {
  WorkerOptions worker;
  // Standalone: the snapshot file served (SIGHUP reloads it). Empty when joining a control plane.
  std::string config;
  // Joining a control plane (`config` empty): control_plane, gateway, token and worker_id are all
  // set. `address` is set only if --advertise-address was given; see AdvertiseAddress.
  ConfigClientOptions client;
  // On SIGTERM, how long open streams may go on before they are ended at an event boundary.
  std::chrono::milliseconds drain_timeout{10000};
  std::string port_file;  // If set, "PROXY_PORT ADMIN_PORT" is written here once serving.
  // CAs for https backends that name none (--backend-ca-file); empty: $SSL_CERT_FILE, else the
  // system's bundle.
  std::string backend_ca_file;
  spdlog::level::level_enum log_level = spdlog::level::info;
};

// --help: the text to print on stdout before exiting 0.
struct GatewayHelp {
  std::string text;
};

// Parses the arguments that follow the program name, reading APIM_GATEWAY_TOKEN from the
// environment and the file --gateway-token-file names. A bad command line is INVALID_ARGUMENT
// with a message that names the flag.
absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> ParseGatewayOptions(
    const std::vector<std::string>& args);

// Where the worker tells the control plane it serves: --advertise-address, else the --listen
// host with the port the proxy bound (so port 0 reports the port picked).
std::string AdvertiseAddress(const GatewayOptions& options, uint16_t proxy_port);

}  // namespace apim::dataplane
