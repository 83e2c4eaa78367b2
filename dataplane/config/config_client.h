#pragma once
// The worker's side of ConfigDiscovery: joins a gateway on the control plane, applies each
// snapshot it is sent (or refuses it with a NACK and keeps the previous one), saves every
// applied snapshot to the local cache, and reconnects with jittered exponential backoff when the
// stream breaks. gRPC keepalive notices a control plane that vanished without closing.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "apim/v1/resources.pb.h"
#include "common/tls/client_tls.h"
#include "dataplane/admin/metrics.h"
#include "dataplane/config/snapshot_store.h"

namespace grpc {
class ClientContext;
}

namespace apim::dataplane {

struct ConfigClientOptions {
  std::string control_plane;  // host:port
  std::string gateway;
  std::string token;
  std::string worker_id;
  std::string address;  // Where this worker serves traffic, for operators.
  std::string cache_path;
  tls::ClientTls tls;  // How the control plane is dialed (--tls, --ca-file, ...).
  // Made from `tls` when the options are settled, so bad files fail at start.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10000};
};

// Validates, compiles and publishes a snapshot, and updates the version metric.
absl::Status ApplySnapshot(v1::Snapshot snapshot, SnapshotStore& snapshots, Metrics& metrics);

class ConfigClient {
 public:
  ConfigClient(ConfigClientOptions options, SnapshotStore& snapshots, Metrics& metrics);
  ~ConfigClient();  // Stops.
  void Start();
  void Stop();

 private:
  void Run();
  // One stream, until it ends; true if a snapshot was applied on it.
  bool RunStream();

  ConfigClientOptions options_;
  SnapshotStore& snapshots_;
  Metrics& metrics_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable stop_requested_;
  bool stopping_ = false;
  grpc::ClientContext* active_context_ = nullptr;  // Cancelled by Stop().
  std::string last_tls_failure_;                   // Logged once until it changes.
};

}  // namespace apim::dataplane
