// apim-controlplane: stores the gateway's configuration in SQLite and serves the Management API.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

#include "common/files.h"
#include "controlplane/server.h"

int main(int argc, char** argv) {
  CLI::App app{"apim-controlplane: configuration store and Management API of the SSE gateway"};
  apim::controlplane::ServerOptions options;
  std::string token_file;
  std::string log_level = "info";
  app.add_option("--listen", options.listen_address,
                 "gRPC listen address (host:port; port 0 picks one)")
      ->capture_default_str();
  app.add_option("--db", options.database_path, "SQLite database file (created if missing)")
      ->capture_default_str();
  app.add_option("--admin-token-file", token_file,
                 "File whose first line is the admin token (else APIM_ADMIN_TOKEN, else the stored "
                 "one, else a new one is generated and printed once)")
      ->check(CLI::ExistingFile);
  app.add_option("--port-file", options.port_file, "Write the bound port here once serving");
  uint32_t hello_timeout_seconds = 5;
  app.add_option("--hello-timeout-seconds", hello_timeout_seconds,
                 "A worker's config stream must say hello (and so authenticate) within this")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  app.add_option("--max-unauthenticated-streams", options.discovery.max_streams_awaiting_hello,
                 "Config streams that have not said hello yet, at most; more are refused")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  apim::controlplane::ServerTlsFiles tls;
  auto* cert_option =
      app.add_option("--tls-cert-file", tls.cert_file,
                     "Serve gRPC over TLS with this certificate chain (PEM); SIGHUP re-reads it")
          ->check(CLI::ExistingFile);
  auto* key_option = app.add_option("--tls-key-file", tls.key_file,
                                    "The private key of --tls-cert-file (PEM); SIGHUP re-reads it")
                         ->check(CLI::ExistingFile);
  cert_option->needs(key_option);
  key_option->needs(cert_option);
  app.add_option("--client-ca-file", tls.client_ca_file,
                 "Require clients (workers, apimctl) to show a certificate signed by a CA in this "
                 "file (mTLS); SIGHUP re-reads it")
      ->check(CLI::ExistingFile)
      ->needs(cert_option);
  app.add_flag("--allow-insecure", options.allow_insecure,
               "Serve plaintext gRPC on an address that is not loopback (tokens readable on the "
               "network)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help prints and exits 0; every command-line error exits 64, as apimctl's and the
    // gateway's do.
    const int code = app.exit(error);
    return code == 0 ? 0 : 64;
  }

  spdlog::set_level(spdlog::level::from_str(log_level));
  if (!tls.cert_file.empty()) options.tls = tls;
  options.discovery.hello_timeout = std::chrono::seconds(hello_timeout_seconds);
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = apim::ReadFirstLine(token_file);
    if (!token.ok()) {
      spdlog::error("apim-controlplane: --admin-token-file: {}",
                    std::string(token.status().message()));
      return 1;
    }
    options.admin_token = *std::move(token);
  } else if (std::string token = apim::SecretFromEnvironment("APIM_ADMIN_TOKEN"); !token.empty()) {
    options.admin_token = std::move(token);
  }

  if (absl::Status secure = apim::controlplane::CheckTransportSecurity(options); !secure.ok()) {
    spdlog::error("apim-controlplane: {}", std::string(secure.message()));
    return 64;
  }
  absl::Status status = apim::controlplane::RunServer(options);
  if (!status.ok()) {
    spdlog::error("apim-controlplane: {}", std::string(status.message()));
    return 1;
  }
  return 0;
}
