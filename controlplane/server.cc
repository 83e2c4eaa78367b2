#include "controlplane/server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/files.h"
#include "common/str_cat.h"
#include "common/tls/loopback.h"
#include "controlplane/admin_token.h"
#include "controlplane/config_discovery_service.h"
#include "controlplane/management_service.h"
#include "controlplane/store/store.h"
#include "controlplane/stricter_rules.h"
#include "controlplane/worker_registry.h"

namespace apim::controlplane {
namespace {

constexpr int kMaxStreamsPerConnection = 100;
constexpr int kMaxManagementThreads = 64;

}  // namespace

absl::Status CheckTransportSecurity(const ServerOptions& options) {
  // Plaintext only where nobody else can read it, unless the operator says otherwise.
  if (options.tls || tls::IsLoopback(options.listen_address)) return absl::OkStatus();
  if (!options.allow_insecure) {
    return absl::InvalidArgumentError(
        StrCat("refusing to serve plaintext gRPC on ", options.listen_address,
               ", which is not a loopback address: tokens would cross the network readable; give "
               "--tls-cert-file and --tls-key-file, or --allow-insecure"));
  }
  spdlog::warn("serving plaintext gRPC on {} (--allow-insecure): tokens cross the network readable",
               options.listen_address);
  return absl::OkStatus();
}

absl::Status RunServer(const ServerOptions& options) {
  // Signals are taken by a dedicated thread with sigwait; block them before gRPC starts threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<ServerTls> tls;
  if (options.tls) {
    absl::StatusOr<std::unique_ptr<ServerTls>> started = ServerTls::Start(*options.tls);
    if (!started.ok()) return started.status();
    tls = *std::move(started);
  }

  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(options.database_path);
  if (!store.ok()) return store.status();
  if (absl::StatusOr<std::vector<std::string>> stale = StoredDocumentsBreakingNewerRules(**store);
      !stale.ok()) {
    return stale.status();
  } else {
    for (const std::string& line : *stale) spdlog::warn("{}", line);
  }
  absl::StatusOr<AdminToken> token = ResolveAdminToken(**store, options.admin_token);
  if (!token.ok()) return token.status();
  if (token->generated) {
    // Printed once: only the hash is kept, so this is the one chance to copy it.
    std::fprintf(stderr,
                 "\nGenerated admin token (shown only now; only its hash is stored):\n\n  %s\n\n"
                 "Use it with: export APIM_TOKEN=%s\n\n",
                 token->generated->c_str(), token->generated->c_str());
  }

  WorkerRegistry workers;
  ManagementService management(**store, workers, token->sha256_hex);
  ConfigDiscoveryService discovery(**store, workers, options.discovery);
  (*store)->SetCommitListener([&discovery] { discovery.NotifyCommitted(); });
  grpc::ServerBuilder builder;
  // Workers keep one stream open for good: let them ping it (a dead peer is noticed within
  // seconds), and ping them too.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A worker holds one stream and apimctl makes one call at a time: a connection asking for more
  // is not one of ours.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  // Management calls run on gRPC's synchronous threads (ConfigDiscovery streams take none): a
  // flood of calls is answered RESOURCE_EXHAUSTED past this many rather than growing threads.
  grpc::ResourceQuota quota("apim-controlplane");
  quota.SetMaxThreads(kMaxManagementThreads);
  builder.SetResourceQuota(quota);
  int port = 0;
  builder.AddListeningPort(options.listen_address,
                           tls ? tls->credentials() : grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&management);
  builder.RegisterService(&discovery);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(StrCat("cannot listen on ", options.listen_address));
  }
  absl::StatusOr<uint64_t> revision = (*store)->Revision();
  spdlog::info("apim-controlplane serving on {} (port {}, {}), database {}, revision {}",
               options.listen_address, port,
               !tls                                  ? "plaintext"
               : options.tls->client_ca_file.empty() ? "TLS"
                                                     : "TLS with client certificates",
               options.database_path, revision.ok() ? *revision : 0);
  if (!options.port_file.empty()) {
    if (absl::Status written = WriteFileAtomically(options.port_file, StrCat(port, "\n"));
        !written.ok()) {
      server->Shutdown();
      return written;
    }
  }

  std::thread waiter([&] {
    int signal_number = 0;
    while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
      if (!tls) {
        spdlog::info("SIGHUP: nothing to reload (no TLS)");
      } else if (absl::Status reloaded = tls->Reload(); reloaded.ok()) {
        spdlog::info("SIGHUP: TLS files reloaded; new connections use them within a second");
      } else {
        spdlog::error("SIGHUP: TLS files not reloaded, the previous ones stay: {}",
                      std::string(reloaded.message()));
      }
    }
    spdlog::info("signal {}: shutting down", signal_number);
    discovery.Shutdown();
    // In-flight calls get two seconds; idle client connections would otherwise hold the whole
    // deadline, since gRPC waits for their transports to close.
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  });
  server->Wait();
  waiter.join();
  (*store)->SetCommitListener(nullptr);
  spdlog::info("apim-controlplane stopped");
  return absl::OkStatus();
}

}  // namespace apim::controlplane
