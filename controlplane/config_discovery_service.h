#pragma once
// ConfigDiscovery.Stream: workers join a gateway with its token and receive that gateway's full
// snapshot, then a new one after every committed change that alters it (a burst of changes
// coalesces into the latest state). Each push is answered with an ACK or a NACK, recorded in the
// WorkerRegistry. Modelled on Envoy's xDS state-of-the-world streams.
//
// Streams use gRPC's callback API: an open or stalled stream costs memory, not a thread. A stream
// must send its hello within `hello_timeout`, and at most `max_streams_awaiting_hello` may be
// waiting to at once, so connections that never authenticate cannot exhaust the control plane.
// The token is checked again after every change: rotating it ends the streams joined with the old
// one. One pusher thread does all store reads and issues every stream operation.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "apim/v1/config_discovery.grpc.pb.h"
#include "controlplane/store/store.h"
#include "controlplane/worker_registry.h"
#include "controlplane/worker_stream.h"

namespace apim::controlplane {

struct DiscoveryLimits {
  std::chrono::milliseconds hello_timeout = std::chrono::seconds(5);
  size_t max_streams_awaiting_hello = 1024;
};

class ConfigDiscoveryService final : public v1::ConfigDiscovery::CallbackService {
 public:
  // `store` and `registry` must outlive the service.
  ConfigDiscoveryService(store::Store& store, WorkerRegistry& registry,
                         DiscoveryLimits limits = {});
  // Stops the pusher. Destroy the gRPC server first: it waits for every stream to be finished,
  // which takes the pusher.
  ~ConfigDiscoveryService() override;

  // Wakes the pusher to offer every stream the current snapshot and check its token. Called by
  // the store after each commit.
  void NotifyCommitted();
  // Ends every stream, and refuses new ones (server shutdown): workers reconnect to another
  // control plane or later.
  void Shutdown();

  grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControlPlaneMessage>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  void Push();
  WorkerStream::Callbacks StreamCallbacks();

  store::Store& store_;
  WorkerRegistry& registry_;
  const DiscoveryLimits limits_;

  std::mutex mu_;
  std::condition_variable wake_;
  uint64_t generation_ = 0;  // Bumped by every commit.
  bool shutting_down_ = false;
  bool stopping_ = false;  // The pusher is to exit.
  std::set<std::shared_ptr<WorkerStream>> streams_;
  std::vector<std::shared_ptr<WorkerStream>> need_attention_;
  size_t awaiting_hello_ = 0;
  std::thread pusher_;
};

}  // namespace apim::controlplane
