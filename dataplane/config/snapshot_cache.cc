#include "dataplane/config/snapshot_cache.h"

#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/sha256.h"
#include "common/str_cat.h"

namespace apim::dataplane {
namespace {

constexpr std::string_view kMagic = "APIM-SNAPSHOT-1\n";

}  // namespace

absl::Status WriteSnapshotCache(const std::string& path, const v1::Snapshot& snapshot) {
  std::string payload;
  if (!snapshot.SerializeToString(&payload)) return absl::InternalError("cannot serialize");
  return WriteFileAtomically(path, StrCat(kMagic, Sha256Hex(payload), "\n", payload));
}

absl::StatusOr<v1::Snapshot> ReadSnapshotCache(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("no snapshot cache at ", path));
  std::stringstream text;
  text << in.rdbuf();
  const std::string file = text.str();
  const size_t header = kMagic.size() + 64 + 1;
  if (file.size() < header || !file.starts_with(kMagic) || file[header - 1] != '\n') {
    return absl::DataLossError(StrCat("snapshot cache ", path, " is not a snapshot file"));
  }
  const std::string_view payload = std::string_view(file).substr(header);
  if (Sha256Hex(payload) != std::string_view(file).substr(kMagic.size(), 64)) {
    return absl::DataLossError(StrCat("snapshot cache ", path, " is corrupt (checksum mismatch)"));
  }
  v1::Snapshot snapshot;
  if (!snapshot.ParseFromString(std::string(payload))) {
    return absl::DataLossError(StrCat("snapshot cache ", path, " cannot be parsed"));
  }
  return snapshot;
}

}  // namespace apim::dataplane
