// config-propagation: time from a Management call returning to every worker of a gateway ACKing
// the new configuration (see bench/config_propagation.h and bench/README.md).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "bench/config_propagation.h"

int main(int argc, char** argv) {
  CLI::App app{"config-propagation: Management call -> every worker ACKed, per update"};
  apim::bench::PropagationOptions options;
  std::string server;
  int timeout_ms = static_cast<int>(options.timeout.count());
  int pause_ms = static_cast<int>(options.pause.count());
  bool json = false;
  app.add_option("--server", server, "Management service address, HOST:PORT")->required();
  app.add_option("--token", options.admin_token, "admin token")->required();
  app.add_option("--gateway", options.gateway, "the gateway whose workers must ACK")->required();
  app.add_option("--api", options.api, "an API on that gateway; its description is overwritten")
      ->required();
  app.add_option("--workers", options.workers, "connected workers that must ACK each update")
      ->check(CLI::Range(1, 100000))
      ->required();
  app.add_option("--updates", options.updates, "updates to make")
      ->check(CLI::Range(1, apim::bench::kMaxUpdates))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "per update: give up on it after this long")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option("--pause-ms", pause_ms, "wait between updates")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  options.timeout = std::chrono::milliseconds(timeout_ms);
  options.pause = std::chrono::milliseconds(pause_ms);

  auto stub = apim::v1::Management::NewStub(
      grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
  absl::StatusOr<apim::bench::PropagationReport> report =
      apim::bench::MeasurePropagation(*stub, options);
  if (!report.ok()) {
    std::fprintf(stderr, "config-propagation: %s\n", report.status().ToString().c_str());
    return 2;
  }
  const std::string text =
      json ? apim::bench::FormatReportJson(*report) : apim::bench::FormatReportText(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
