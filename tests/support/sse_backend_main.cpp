// sse-test-backend: the controllable SSE backend of the integration tests, the demo and the
// benchmarks (routes in tests/support/sse_backend.h). Runs until SIGINT or SIGTERM.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <string>

#include "common/descriptors.h"
#include "common/files.h"
#include "tests/support/sse_backend.h"

int main(int argc, char** argv) {
  CLI::App app{"sse-test-backend: a controllable HTTP/1.1 and server-sent events backend"};
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  std::string log_level = "info";
  apim::testing::SseBackendOptions options;
  int max_stream_seconds = static_cast<int>(options.max_stream_duration.count());
  app.add_option("--listen", listen, "loopback HOST:PORT to listen on (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port here once listening");
  app.add_option("--threads", options.threads, "I/O threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-stream-seconds", max_stream_seconds, "no event stream lasts longer")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--tls-cert-file", options.tls_cert_file, "serve HTTPS with this PEM chain")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key-file", options.tls_key_file, "the private key of --tls-cert-file")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca-file", options.tls_client_ca_file,
                 "require client certificates signed by a CA in this PEM file")
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  options.max_stream_duration = std::chrono::seconds(max_stream_seconds);
  apim::PrepareDescriptors();  // Benchmarks hold thousands of streams.

  // Blocked before any thread starts, so every thread inherits the mask and sigwait gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  apim::testing::SseBackend backend(options);
  absl::StatusOr<uint16_t> port = backend.Start(listen);
  if (!port.ok()) {
    spdlog::error("sse-test-backend: {}", std::string(port.status().message()));
    return 1;
  }
  if (!port_file.empty()) {
    if (absl::Status written = apim::WriteFileAtomically(port_file, std::to_string(*port) + "\n");
        !written.ok()) {
      spdlog::error("sse-test-backend: {}", std::string(written.message()));
      return 1;
    }
  }
  spdlog::info("sse-test-backend: listening on 127.0.0.1:{} with {} thread(s)", *port,
               options.threads);

  int received = 0;
  if (int error = sigwait(&signals, &received); error != 0) {
    spdlog::error("sse-test-backend: sigwait: {}", std::strerror(error));
  }
  spdlog::info("sse-test-backend: signal {}, stopping", received);
  backend.Stop();
  return 0;
}
