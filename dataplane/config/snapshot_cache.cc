#include "dataplane/config/snapshot_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/sha256.h"
#include "common/str_cat.h"

namespace apim::dataplane {
namespace {

constexpr std::string_view kMagic = "APIM-SNAPSHOT-1\n";

absl::Status WriteAllAndSync(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(StrCat("write: ", std::strerror(errno)));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd) != 0) return absl::InternalError(StrCat("fsync: ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSnapshotCache(const std::string& path, const v1::Snapshot& snapshot) {
  std::string payload;
  if (!snapshot.SerializeToString(&payload)) return absl::InternalError("cannot serialize");
  const std::string file = StrCat(kMagic, Sha256Hex(payload), "\n", payload);
  const std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(StrCat("snapshot cache ", temporary, ": ", std::strerror(errno)));
  }
  absl::Status written = WriteAllAndSync(fd, file);
  ::close(fd);
  if (!written.ok()) return written;
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return absl::InternalError(StrCat("snapshot cache rename: ", std::strerror(errno)));
  }
  // The rename itself is durable only once the directory is synced.
  std::string directory = std::filesystem::absolute(path).parent_path().string();
  if (int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
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
