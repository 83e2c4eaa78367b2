// apim-gateway: the data-plane worker. Either joins a gateway on the control plane
// (--control-plane), which pushes its configuration, or serves a snapshot file (--config, the
// standalone mode; SIGHUP reloads it). SIGINT/SIGTERM stop.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "common/descriptors.h"
#include "dataplane/config/config_client.h"
#include "dataplane/admin/metrics.h"
#include "dataplane/config/snapshot_cache.h"
#include "dataplane/config/snapshot_store.h"
#include "dataplane/listener/worker.h"

namespace {

using namespace apim::dataplane;

absl::Status LoadConfigFile(const std::string& path, SnapshotStore& snapshots, Metrics& metrics) {
  absl::StatusOr<apim::v1::Snapshot> snapshot = ReadSnapshotFile(path);
  if (!snapshot.ok()) return snapshot.status();
  const uint64_t version = snapshot->version();
  if (absl::Status applied = ApplySnapshot(*std::move(snapshot), snapshots, metrics);
      !applied.ok()) {
    return applied;
  }
  spdlog::info("serving config version {} from {}", version, path);
  return absl::OkStatus();
}

// Serves the cached snapshot until the control plane sends one; a corrupt cache is ignored.
void LoadCache(const std::string& path, SnapshotStore& snapshots, Metrics& metrics) {
  absl::StatusOr<apim::v1::Snapshot> cached = ReadSnapshotCache(path);
  if (!cached.ok()) {
    if (!absl::IsNotFound(cached.status())) {
      spdlog::error("ignoring the snapshot cache: {}", std::string(cached.status().message()));
    }
    return;
  }
  const uint64_t version = cached->version();
  if (absl::Status applied = ApplySnapshot(*std::move(cached), snapshots, metrics); !applied.ok()) {
    spdlog::error("ignoring the snapshot cache: {}", std::string(applied.message()));
    return;
  }
  metrics.config_from_cache = 1;
  spdlog::info("serving cached config version {} from {} until the control plane answers", version,
               path);
}

std::chrono::milliseconds drain_timeout{10000};
bool draining = false;

void WatchSignals(boost::asio::signal_set& signals, Worker& worker, const std::string& config,
                  SnapshotStore& snapshots, Metrics& metrics) {
  signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    if (signal_number == SIGHUP) {
      if (config.empty()) {
        spdlog::info("SIGHUP ignored: the configuration comes from the control plane");
      } else if (absl::Status reloaded = LoadConfigFile(config, snapshots, metrics);
                 !reloaded.ok()) {
        spdlog::error("reload refused, still serving the previous config: {}",
                      std::string(reloaded.message()));
      }
      WatchSignals(signals, worker, config, snapshots, metrics);
      return;
    }
    if (signal_number == SIGTERM && !draining) {
      // SIGTERM drains (a second one, or SIGINT, stops at once).
      draining = true;
      worker.Drain(drain_timeout);
      WatchSignals(signals, worker, config, snapshots, metrics);
      return;
    }
    spdlog::info("signal {}: stopping", signal_number);
    worker.Stop();
  });
}

std::string FirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"apim-gateway: SSE-native API gateway worker"};
  WorkerOptions options;
  options.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string config;
  ConfigClientOptions client;
  std::string token_file;
  std::string port_file;
  std::string log_level = "info";
  int header_timeout = static_cast<int>(options.limits.request_header_timeout.count());

  auto* config_option =
      app.add_option("--config", config, "Standalone: snapshot file (JSON of apim.v1.Snapshot)");
  auto* control_plane_option = app.add_option("--control-plane", client.control_plane,
                                              "Join a gateway on this control plane (host:port)");
  config_option->excludes(control_plane_option);
  app.add_option("--gateway", client.gateway, "Gateway to join")->needs(control_plane_option);
  app.add_option("--gateway-token-file", token_file,
                 "File whose first line is the gateway's worker token (else APIM_GATEWAY_TOKEN)")
      ->check(CLI::ExistingFile);
  app.add_option("--worker-id", client.worker_id, "This worker's id (default: host-pid)");
  app.add_option("--advertise-address", client.address,
                 "Where this worker serves, as reported to the control plane");
  client.cache_path = "apim-gateway.snapshot";
  app.add_option("--snapshot-cache", client.cache_path,
                 "Last applied snapshot, served at start if the control plane is unreachable")
      ->capture_default_str();
  app.add_option("--listen", options.listen, "Proxy address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--admin-listen", options.admin_listen,
                 "Admin address for /healthz, /readyz, /metrics")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Worker threads, each with its own listener")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--request-header-timeout", header_timeout,
                 "Seconds a request's headers may take once its first byte arrives")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  int connect_timeout = static_cast<int>(options.limits.connect_timeout.count());
  app.add_option("--connect-timeout", connect_timeout,
                 "Seconds a backend's TCP handshake may take (then 504)")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  double drain_seconds = 10;
  app.add_option("--drain-timeout", drain_seconds,
                 "On SIGTERM: seconds before open streams are ended at an event boundary")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  int keepalive_idle = static_cast<int>(options.limits.tcp_keepalive_idle.count());
  app.add_option("--tcp-keepalive-idle", keepalive_idle,
                 "Seconds of silence before TCP keepalive probes (client and backend sockets)")
      ->check(CLI::Range(1, 7200))
      ->capture_default_str();
  int keepalive_interval = static_cast<int>(options.limits.tcp_keepalive_interval.count());
  app.add_option("--tcp-keepalive-interval", keepalive_interval, "Seconds between probes")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  app.add_option("--tcp-keepalive-count", options.limits.tcp_keepalive_count,
                 "Unanswered probes before the connection is dropped")
      ->check(CLI::Range(1, 30))
      ->capture_default_str();
  app.add_option("--cache-max-bytes", options.cache_max_bytes,
                 "Response cache size for cache-lookup/cache-store policies")
      ->capture_default_str();
  app.add_option("--max-buffered-body-bytes", options.limits.max_buffered_body_bytes,
                 "Largest body buffer-response or buffer-request-body holds (then 502 or 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--buffer-budget-bytes", options.buffer_budget_bytes,
                 "Bytes all buffered bodies may hold together; past it responses are streamed "
                 "and requests that need buffering get 503")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--rate-limit-max-keys", options.rate_limit_max_keys,
                 "Counter keys rate-limit-by-key tracks; past it new keys share one window")
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}))
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write \"PROXY_PORT ADMIN_PORT\" here once serving");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.limits.request_header_timeout = std::chrono::seconds(header_timeout);
  options.limits.connect_timeout = std::chrono::seconds(connect_timeout);
  options.limits.tcp_keepalive_idle = std::chrono::seconds(keepalive_idle);
  options.limits.tcp_keepalive_interval = std::chrono::seconds(keepalive_interval);
  drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(drain_seconds * 1000));
  spdlog::set_level(spdlog::level::from_str(log_level));
  // Diagnostics go to stderr; stdout carries the JSON access log.
  spdlog::set_default_logger(spdlog::stderr_color_mt("gateway"));
  if (config.empty() && client.control_plane.empty()) {
    spdlog::error("give --config FILE (standalone) or --control-plane HOST:PORT --gateway NAME");
    return 64;
  }
  if (!client.control_plane.empty()) {
    client.token =
        token_file.empty()
            ? (std::getenv("APIM_GATEWAY_TOKEN") ? std::getenv("APIM_GATEWAY_TOKEN") : "")
            : FirstLine(token_file);
    if (client.gateway.empty() || client.token.empty()) {
      spdlog::error(
          "--control-plane needs --gateway and a token (--gateway-token-file or "
          "APIM_GATEWAY_TOKEN; create one with `apimctl gateway token NAME`)");
      return 64;
    }
    if (client.worker_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      client.worker_id = std::string(host) + "-" + std::to_string(getpid());
    }
  }
  apim::PrepareDescriptors();  // Every stream holds two.

  SnapshotStore snapshots;
  Metrics metrics;
  if (!config.empty()) {
    if (absl::Status loaded = LoadConfigFile(config, snapshots, metrics); !loaded.ok()) {
      spdlog::error("{}", std::string(loaded.message()));
      return 1;
    }
  } else {
    LoadCache(client.cache_path, snapshots, metrics);
  }
  Worker worker(options, snapshots, metrics);
  if (absl::Status bound = worker.Bind(); !bound.ok()) {
    spdlog::error("{}", std::string(bound.message()));
    return 1;
  }
  spdlog::info("apim-gateway proxy on port {}, admin on port {}, {} threads", worker.proxy_port(),
               worker.admin_port(), options.threads);
  std::optional<ConfigClient> config_client;
  if (!client.control_plane.empty()) {
    if (client.address.empty()) {
      client.address = options.listen.substr(0, options.listen.rfind(':') + 1) +
                       std::to_string(worker.proxy_port());
    }
    config_client.emplace(client, snapshots, metrics);
    config_client->Start();
  }
  if (!port_file.empty()) {
    const std::string temporary = port_file + ".tmp";
    std::ofstream(temporary) << worker.proxy_port() << ' ' << worker.admin_port() << '\n';
    std::filesystem::rename(temporary, port_file);
  }
  boost::asio::signal_set signals(worker.control_context(), SIGINT, SIGTERM, SIGHUP);
  WatchSignals(signals, worker, config, snapshots, metrics);
  worker.Run();
  if (config_client) config_client->Stop();
  spdlog::info("apim-gateway stopped");
  return 0;
}
