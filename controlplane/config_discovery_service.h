#pragma once
// ConfigDiscovery.Stream: workers join a gateway with its token and receive that gateway's full
// snapshot, then a new one after every committed change that alters it (a burst of changes
// coalesces into the latest state). Each push is answered with an ACK or a NACK, recorded in the
// WorkerRegistry. Modelled on Envoy's xDS state-of-the-world streams.

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "apim/v1/config_discovery.grpc.pb.h"
#include "controlplane/store/store.h"
#include "controlplane/worker_registry.h"

namespace apim::controlplane {

class ConfigDiscoveryService final : public v1::ConfigDiscovery::Service {
 public:
  // `store` and `registry` must outlive the service.
  ConfigDiscoveryService(store::Store& store, WorkerRegistry& registry);

  // Wakes every stream to look for a new snapshot. Called by the store after each commit.
  void NotifyCommitted();
  // Ends every stream (server shutdown): workers reconnect to another control plane or later.
  void Shutdown();

  grpc::Status Stream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ControlPlaneMessage, v1::WorkerMessage>* stream) override;

 private:
  store::Store& store_;
  WorkerRegistry& registry_;
  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t generation_ = 0;  // Bumped by every commit.
  bool shutting_down_ = false;
};

}  // namespace apim::controlplane
