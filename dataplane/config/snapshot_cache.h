#pragma once
// The last applied snapshot on local disk, so a worker restarted while the control plane is down
// still serves (static stability). Written atomically (temporary file, fsync, rename) with a
// SHA-256 of its content, so a torn or corrupted file is detected and ignored, never served.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"

namespace apim::dataplane {

absl::Status WriteSnapshotCache(const std::string& path, const v1::Snapshot& snapshot);
// NOT_FOUND when there is no file; DATA_LOSS when it is corrupt.
absl::StatusOr<v1::Snapshot> ReadSnapshotCache(const std::string& path);

}  // namespace apim::dataplane
