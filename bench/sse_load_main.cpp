// sse-load: opens many concurrent SSE streams to a loopback URL and reports time-to-first-event,
// per-event latency and throughput (see bench/sse_load.h and bench/README.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "bench/sse_load.h"
#include "common/descriptors.h"

namespace {

// Each stream is a socket: lift the soft descriptor limit to what the streams need.
void RaiseOpenFileLimit(int streams) {
  const rlim_t wanted = static_cast<rlim_t>(streams) + 256;
  const rlim_t got = apim::PrepareDescriptors(wanted);
  if (got < wanted) {
    std::fprintf(stderr, "sse-load: open-file limit %llu is below %llu; raise `ulimit -n`\n",
                 static_cast<unsigned long long>(got), static_cast<unsigned long long>(wanted));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sse-load: concurrent server-sent-event streams against a loopback URL"};
  apim::bench::LoadOptions options;
  bool json = false;
  app.add_option("--url", options.url,
                 "http[s]://127.0.0.1:PORT/path/events?interval_ms=100 (loopback hosts only)")
      ->required();
  app.add_option("--streams", options.streams, "concurrent streams")->capture_default_str();
  app.add_option("--duration", options.duration_s, "seconds to run (at most 600)")
      ->check(CLI::Range(0.0, apim::bench::kMaxDurationSeconds))
      ->capture_default_str();
  app.add_option("--connect-rate", options.connect_rate,
                 "streams opened per second during ramp-up (0: all at once)")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "threads, one io_context each")
      ->capture_default_str();
  app.add_option("--ca-file", options.ca_file,
                 "https:// only: PEM CA certificate(s) to verify the server with (default: the "
                 "system's bundle)");
  app.add_flag("--tls-resume", options.tls_resume,
               "https:// only: resume each thread's latest TLS session (as a proxy's pool does) "
               "instead of a full handshake per stream");
  app.add_flag("--h2", options.h2,
               "HTTP/2: multiplex the streams over --connections connections (https://: ALPN h2, "
               "required of the server; http://: h2c with prior knowledge)");
  app.add_option("--connections", options.connections,
                 "--h2 only: HTTP/2 connections the streams are spread over evenly")
      ->capture_default_str();
  app.add_option("--label", options.label, "name of this run in the report");
  app.add_flag("--json", json, "print one JSON object instead of a table");
  CLI11_PARSE(app, argc, argv);
  if (!options.h2 && app.count("--connections") > 0) {
    std::fprintf(stderr, "sse-load: --connections: only with --h2\n");
    return 2;
  }

  RaiseOpenFileLimit(options.streams);
  absl::StatusOr<apim::bench::LoadReport> report = apim::bench::RunLoad(options);
  if (!report.ok()) {
    std::fprintf(stderr, "sse-load: %s\n", std::string(report.status().message()).c_str());
    return 2;
  }
  std::string text =
      json ? apim::bench::FormatReportJson(*report) : apim::bench::FormatReportText(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
