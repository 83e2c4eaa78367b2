// apimctl: command-line client of the control plane's Management service.

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <iostream>
#include <string>
#include <vector>

#include "apim/v1/management.grpc.pb.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  apim::cli::ParsedCommandLine parsed =
      apim::cli::ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  std::cout << parsed.out;
  std::cerr << parsed.err;
  if (!parsed.command) return parsed.exit_code;

  // Plaintext for now: the control plane listens on loopback in development. TLS channel
  // credentials come with the control plane's TLS support.
  auto channel =
      grpc::CreateChannel(parsed.command->connection.server, grpc::InsecureChannelCredentials());
  auto stub = apim::v1::Management::NewStub(channel);
  return apim::cli::RunCommand(*parsed.command, *stub, std::cout, std::cerr);
}
