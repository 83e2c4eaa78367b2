// apim-gateway: the data-plane worker. Serves the APIs of a snapshot read from --config (the
// standalone mode; the control-plane connection comes with config push). SIGHUP reloads the
// file without disturbing open streams; SIGINT/SIGTERM stop.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dataplane/metrics.h"
#include "dataplane/snapshot_store.h"
#include "dataplane/worker.h"

namespace {

using namespace apim::dataplane;

absl::Status LoadConfig(const std::string& path, SnapshotStore& snapshots, Metrics& metrics) {
  absl::StatusOr<apim::v1::Snapshot> snapshot = ReadSnapshotFile(path);
  if (!snapshot.ok()) return snapshot.status();
  const uint64_t version = snapshot->version();
  auto runtime = RuntimeSnapshot::Compile(*std::move(snapshot));
  if (!runtime.ok()) return runtime.status();
  snapshots.Publish(*std::move(runtime));
  metrics.config_version = version;
  spdlog::info("serving config version {} from {}", version, path);
  return absl::OkStatus();
}

void WatchSignals(boost::asio::signal_set& signals, Worker& worker, const std::string& config,
                  SnapshotStore& snapshots, Metrics& metrics) {
  signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    if (signal_number == SIGHUP) {
      absl::Status reloaded = LoadConfig(config, snapshots, metrics);
      if (!reloaded.ok()) {
        spdlog::error("reload refused, still serving the previous config: {}",
                      std::string(reloaded.message()));
      }
      WatchSignals(signals, worker, config, snapshots, metrics);
      return;
    }
    spdlog::info("signal {}: stopping", signal_number);
    worker.Stop();
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"apim-gateway: SSE-native API gateway worker"};
  WorkerOptions options;
  options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string config;
  std::string port_file;
  std::string log_level = "info";
  app.add_option("--config", config, "Snapshot file (JSON of apim.v1.Snapshot)")->required();
  app.add_option("--listen", options.listen, "Proxy address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--admin-listen", options.admin_listen,
                 "Admin address for /healthz, /readyz, /metrics")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Worker threads, each with its own listener")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  int header_timeout = static_cast<int>(options.limits.request_header_timeout.count());
  app.add_option("--request-header-timeout", header_timeout,
                 "Seconds a request's headers may take once its first byte arrives")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write \"PROXY_PORT ADMIN_PORT\" here once serving");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.limits.request_header_timeout = std::chrono::seconds(header_timeout);
  spdlog::set_level(spdlog::level::from_str(log_level));
  // Diagnostics go to stderr; stdout carries the JSON access log.
  spdlog::set_default_logger(spdlog::stderr_color_mt("gateway"));

  // Every stream holds two descriptors: raise the soft limit as far as the hard one allows.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  SnapshotStore snapshots;
  Metrics metrics;
  if (absl::Status loaded = LoadConfig(config, snapshots, metrics); !loaded.ok()) {
    spdlog::error("{}", std::string(loaded.message()));
    return 1;
  }
  Worker worker(options, snapshots, metrics);
  if (absl::Status bound = worker.Bind(); !bound.ok()) {
    spdlog::error("{}", std::string(bound.message()));
    return 1;
  }
  spdlog::info("apim-gateway proxy on port {}, admin on port {}, {} threads", worker.proxy_port(),
               worker.admin_port(), options.threads);
  if (!port_file.empty()) {
    const std::string temporary = port_file + ".tmp";
    std::ofstream(temporary) << worker.proxy_port() << ' ' << worker.admin_port() << '\n';
    std::filesystem::rename(temporary, port_file);
  }
  boost::asio::signal_set signals(worker.control_context(), SIGINT, SIGTERM, SIGHUP);
  WatchSignals(signals, worker, config, snapshots, metrics);
  worker.Run();
  spdlog::info("apim-gateway stopped");
  return 0;
}
