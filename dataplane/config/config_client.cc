#include "dataplane/config/config_client.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <random>

#include "apim/v1/config_discovery.grpc.pb.h"
#include "common/tls/handshake_probe.h"
#include "dataplane/config/snapshot_cache.h"

namespace apim::dataplane {

absl::Status ApplySnapshot(v1::Snapshot snapshot, SnapshotStore& snapshots, Metrics& metrics) {
  const uint64_t version = snapshot.version();
  absl::StatusOr<std::shared_ptr<const RuntimeSnapshot>> runtime =
      RuntimeSnapshot::Compile(std::move(snapshot));
  if (!runtime.ok()) return runtime.status();
  for (const v1::Api& api : (*runtime)->source.apis()) {
    if (api.backend_tls().skip_verification()) {
      spdlog::warn(
          "api \"{}\": the certificate of its backend {} is not verified "
          "(backend_tls.skip_verification)",
          api.name(), api.backend_url());
    }
  }
  metrics.SetCertificateExpiry((*runtime)->certificates
                                   ? (*runtime)->certificates->NotAfterByHostname()
                                   : std::map<std::string, int64_t>());
  snapshots.Publish(*std::move(runtime));
  metrics.config_version = version;
  return absl::OkStatus();
}

ConfigClient::ConfigClient(ConfigClientOptions options, SnapshotStore& snapshots, Metrics& metrics)
    : options_(std::move(options)), snapshots_(snapshots), metrics_(metrics) {}

ConfigClient::~ConfigClient() { Stop(); }

void ConfigClient::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ConfigClient::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (active_context_) active_context_->TryCancel();
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ConfigClient::Run() {
  std::mt19937_64 random(std::random_device{}());
  auto backoff = options_.initial_backoff;
  for (;;) {
    if (RunStream()) backoff = options_.initial_backoff;
    // Jittered exponential backoff: many workers losing one control plane do not come back
    // in lockstep.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const auto delay = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff.count()) * jitter(random)));
    backoff = std::min(backoff * 2, options_.max_backoff);
    std::unique_lock lock(mu_);
    if (stop_requested_.wait_for(lock, delay, [this] { return stopping_; })) return;
  }
}

bool ConfigClient::RunStream() {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  arguments.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto channel = grpc::CreateCustomChannel(options_.control_plane, options_.credentials, arguments);
  auto stub = v1::ConfigDiscovery::NewStub(channel);
  grpc::ClientContext context;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    active_context_ = &context;
  }
  auto stream = stub->Stream(&context);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_gateway(options_.gateway);
  hello.mutable_hello()->set_gateway_token(options_.token);
  hello.mutable_hello()->set_worker_id(options_.worker_id);
  hello.mutable_hello()->set_address(options_.address);
  hello.mutable_hello()->set_version(metrics_.config_version.load());
  hello.mutable_hello()->set_build_version(APIM_VERSION);

  bool applied_any = false;
  if (stream->Write(hello)) {
    metrics_.control_plane_connected = 1;
    v1::ControlPlaneMessage message;
    while (stream->Read(&message)) {
      const uint64_t version = message.snapshot().version();
      v1::WorkerMessage reply;
      absl::Status applied = ApplySnapshot(message.snapshot(), snapshots_, metrics_);
      if (applied.ok()) {
        applied_any = true;
        metrics_.config_from_cache = 0;
        if (absl::Status saved = WriteSnapshotCache(options_.cache_path, message.snapshot());
            !saved.ok()) {
          spdlog::warn("applied version {} but could not cache it: {}", version,
                       std::string(saved.message()));
        }
        spdlog::info("applied config version {} from the control plane", version);
        reply.mutable_ack()->set_version(version);
        reply.mutable_ack()->set_nonce(message.nonce());
      } else {
        spdlog::error("refused config version {}, keeping version {}: {}", version,
                      metrics_.config_version.load(), std::string(applied.message()));
        reply.mutable_nack()->set_version(version);
        reply.mutable_nack()->set_nonce(message.nonce());
        reply.mutable_nack()->set_error(std::string(applied.message()));
      }
      if (!stream->Write(reply)) break;
    }
  }
  metrics_.control_plane_connected = 0;
  grpc::Status status = stream->Finish();
  {
    std::lock_guard lock(mu_);
    active_context_ = nullptr;
  }
  std::string tls_failure;
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && options_.tls.enabled()) {
    // gRPC says only that it could not connect; a handshake of our own says why.
    tls_failure = tls::DiagnoseHandshake(options_.control_plane, options_.tls);
  }
  if (!tls_failure.empty()) {
    if (tls_failure != last_tls_failure_) {
      spdlog::error("cannot join the control plane at {}: {}", options_.control_plane, tls_failure);
    }
  } else if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    spdlog::error("control plane refused this worker: {}", status.error_message());
  } else if (!status.ok()) {
    spdlog::warn("config stream to {} ended: {}", options_.control_plane, status.error_message());
  }
  last_tls_failure_ = std::move(tls_failure);
  return applied_any;
}

}  // namespace apim::dataplane
