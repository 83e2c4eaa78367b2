#pragma once
// The configuration a worker serves, swapped atomically: a request takes one RuntimeSnapshot at
// its start and keeps it, so a config change never disturbs a request or stream in flight.

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "dataplane/config/route_table.h"
#include "dataplane/config/served_certificates.h"

namespace apim::dataplane {

// A validated snapshot compiled for serving. Immutable once built.
struct RuntimeSnapshot {
  v1::Snapshot source;
  RouteTable routes;
  // What the TLS listener serves; null when the snapshot has no certificate.
  std::shared_ptr<const ServedCertificates> certificates;

  static absl::StatusOr<std::shared_ptr<const RuntimeSnapshot>> Compile(v1::Snapshot snapshot);
};

class SnapshotStore {
 public:
  // Null until the first snapshot is published.
  std::shared_ptr<const RuntimeSnapshot> Current() const { return current_.load(); }
  void Publish(std::shared_ptr<const RuntimeSnapshot> snapshot) {
    current_.store(std::move(snapshot));
  }

 private:
  std::atomic<std::shared_ptr<const RuntimeSnapshot>> current_;
};

// Reads a snapshot from a JSON file (the protobuf JSON mapping of apim.v1.Snapshot).
absl::StatusOr<v1::Snapshot> ReadSnapshotFile(const std::string& path);

}  // namespace apim::dataplane
