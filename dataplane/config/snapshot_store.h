#pragma once
// The configuration a worker serves, swapped atomically: a request takes one RuntimeSnapshot at
// its start and keeps it, so a config change never disturbs a request or stream in flight.

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "dataplane/config/route_table.h"
#include "dataplane/config/served_certificates.h"
#include "dataplane/shared_state/redis_settings.h"

namespace apim::dataplane {

// A validated snapshot compiled for serving. Immutable once built.
struct RuntimeSnapshot {
  v1::Snapshot source;
  RouteTable routes;
  // What the TLS listener serves; null when the snapshot has no certificate.
  std::shared_ptr<const ServedCertificates> certificates;
  // Where limits are counted across the gateway's workers; null: each worker counts alone.
  std::shared_ptr<const RedisSettings> shared_state;

  static absl::StatusOr<std::shared_ptr<const RuntimeSnapshot>> Compile(v1::Snapshot snapshot);
};

class SnapshotStore {
 public:
  // Null until the first snapshot is published.
  std::shared_ptr<const RuntimeSnapshot> Current() const { return current_.load(); }
  void Publish(std::shared_ptr<const RuntimeSnapshot> snapshot) {
    current_.store(std::move(snapshot));
    if (published_) published_();
  }
  // Called on the publishing thread after each Publish (the worker connects to a new shared-state
  // server at once, not on the next request). Set before snapshots are published concurrently.
  void SetPublishedHook(std::function<void()> hook) { published_ = std::move(hook); }

 private:
  std::atomic<std::shared_ptr<const RuntimeSnapshot>> current_;
  std::function<void()> published_;
};

// Reads a snapshot from a JSON file (the protobuf JSON mapping of apim.v1.Snapshot).
absl::StatusOr<v1::Snapshot> ReadSnapshotFile(const std::string& path);

}  // namespace apim::dataplane
