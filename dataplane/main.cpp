// apim-gateway: the data-plane worker. Either joins a gateway on the control plane
// (--control-plane), which pushes its configuration, or serves a snapshot file (--config, the
// standalone mode; SIGHUP reloads it). SIGINT/SIGTERM stop.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <optional>

#include "common/descriptors.h"
#include "common/files.h"
#include "common/str_cat.h"
#include "dataplane/admin/metrics.h"
#include "dataplane/backend/backend_tls.h"
#include "dataplane/config/config_client.h"
#include "dataplane/config/snapshot_cache.h"
#include "dataplane/config/snapshot_store.h"
#include "dataplane/gateway_options.h"
#include "dataplane/listener/worker.h"

namespace {

using namespace apim::dataplane;

constexpr int kExitUsage = 64;  // EX_USAGE

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

// What the worker does about SIGTERM: the first one drains, a second one (or SIGINT) stops.
enum class Shutdown { kNotAsked, kDraining };

// Handles the next signal, then waits for the one after.
void WatchSignals(boost::asio::signal_set& signals, Worker& worker, const GatewayOptions& options,
                  SnapshotStore& snapshots, Metrics& metrics, Shutdown shutdown) {
  signals.async_wait([&, shutdown](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    if (signal_number == SIGHUP) {
      if (options.config.empty()) {
        spdlog::info("SIGHUP ignored: the configuration comes from the control plane");
      } else if (absl::Status reloaded = LoadConfigFile(options.config, snapshots, metrics);
                 !reloaded.ok()) {
        spdlog::error("reload refused, still serving the previous config: {}",
                      std::string(reloaded.message()));
      }
      WatchSignals(signals, worker, options, snapshots, metrics, shutdown);
      return;
    }
    if (signal_number == SIGTERM && shutdown == Shutdown::kNotAsked) {
      worker.Drain(options.drain_timeout);
      WatchSignals(signals, worker, options, snapshots, metrics, Shutdown::kDraining);
      return;
    }
    spdlog::info("signal {}: stopping", signal_number);
    worker.Stop();
  });
}

// Serves until a signal stops the worker; the exit code.
int RunGateway(GatewayOptions options) {
  // OpenSSL writes to sockets with write(), not send(MSG_NOSIGNAL): a peer that has gone would
  // otherwise end the process with SIGPIPE instead of failing that one write with EPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  apim::PrepareDescriptors();                        // Every stream holds two.
  SetDefaultBackendCaFile(options.backend_ca_file);  // Before the first snapshot is compiled.

  SnapshotStore snapshots;
  Metrics metrics;
  if (!options.config.empty()) {
    if (absl::Status loaded = LoadConfigFile(options.config, snapshots, metrics); !loaded.ok()) {
      spdlog::error("{}", std::string(loaded.message()));
      return 1;
    }
  } else {
    LoadCache(options.client.cache_path, snapshots, metrics);
  }
  Worker worker(options.worker, snapshots, metrics);
  if (absl::Status bound = worker.Bind(); !bound.ok()) {
    spdlog::error("{}", std::string(bound.message()));
    return 1;
  }
  spdlog::info("apim-gateway proxy on port {}{}, admin on port {}, {} threads", worker.proxy_port(),
               worker.tls_port() != 0 ? apim::StrCat(", TLS on port ", worker.tls_port()) : "",
               worker.admin_port(), options.worker.threads);
  std::optional<ConfigClient> config_client;
  if (!options.client.control_plane.empty()) {
    ConfigClientOptions client = options.client;
    client.address = AdvertiseAddress(options, worker.proxy_port());
    config_client.emplace(std::move(client), snapshots, metrics);
    config_client->Start();
  }
  if (!options.port_file.empty()) {
    if (absl::Status written = apim::WriteFileAtomically(
            options.port_file,
            apim::StrCat(worker.proxy_port(), " ", worker.admin_port(),
                         worker.tls_port() != 0 ? apim::StrCat(" ", worker.tls_port()) : "", "\n"));
        !written.ok()) {
      spdlog::error("{}", std::string(written.message()));
      return 1;
    }
  }
  boost::asio::signal_set signals(worker.control_context(), SIGINT, SIGTERM, SIGHUP);
  WatchSignals(signals, worker, options, snapshots, metrics, Shutdown::kNotAsked);
  worker.Run();
  if (config_client) config_client->Stop();
  spdlog::info("apim-gateway stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> parsed =
      ParseGatewayOptions(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::cerr << "apim-gateway: " << parsed.status().message()
              << "\nRun with --help for more information.\n";
    return kExitUsage;
  }
  if (const GatewayHelp* help = std::get_if<GatewayHelp>(&*parsed)) {
    std::cout << help->text;
    return 0;
  }
  GatewayOptions& options = std::get<GatewayOptions>(*parsed);
  // Diagnostics go to stderr; stdout carries the JSON access log.
  spdlog::set_default_logger(spdlog::stderr_color_mt("gateway"));
  spdlog::set_level(options.log_level);
  return RunGateway(std::move(options));
}
