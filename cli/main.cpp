// apimctl: command-line client of the control plane's Management service.

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <iostream>
#include <string>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "cli/commands.h"
#include "common/tls/handshake_probe.h"

int main(int argc, char** argv) {
  apim::cli::ParsedCommandLine parsed =
      apim::cli::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  std::cout << parsed.out;
  std::cerr << parsed.err;
  if (!parsed.command) return parsed.exit_code;

  const apim::cli::Connection& connection = parsed.command->connection;
  auto stub =
      apim::v1::Management::NewStub(grpc::CreateChannel(connection.server, connection.credentials));
  const int exit_code = apim::cli::RunCommand(*parsed.command, *stub, std::cout, std::cerr);
  if (exit_code == static_cast<int>(grpc::StatusCode::UNAVAILABLE) && connection.tls.enabled()) {
    // gRPC says only that it could not connect; a handshake of our own says why.
    if (std::string why = apim::tls::DiagnoseHandshake(connection.server, connection.tls);
        !why.empty()) {
      std::cerr << "apimctl: TLS: " << why << '\n';
    }
  }
  return exit_code;
}
