#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "common/str_cat.h"

namespace apim {
namespace {

// Closes the descriptor it holds.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting failure (a write-back error may only show here).
  bool Close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

absl::Status WriteError(const std::string& path, std::string_view step) {
  return absl::ErrnoToStatus(errno, StrCat("cannot write ", path, ": ", step));
}

absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0) return WriteError(path, "write");
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

std::string_view TrimWhitespace(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  return text;
}

}  // namespace

absl::StatusOr<std::string> ReadFirstLine(const std::string& path) {
  Descriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) return absl::ErrnoToStatus(errno, StrCat("cannot read ", path));
  std::string text;
  char buffer[4096];
  while (text.find('\n') == std::string::npos) {
    const ssize_t read = ::read(file.get(), buffer, sizeof buffer);
    if (read < 0 && errno == EINTR) continue;
    if (read < 0) return absl::ErrnoToStatus(errno, StrCat("cannot read ", path));
    if (read == 0) break;
    text.append(buffer, static_cast<size_t>(read));
  }
  const std::string_view line = TrimWhitespace(std::string_view(text).substr(0, text.find('\n')));
  if (line.empty()) {
    return absl::InvalidArgumentError(StrCat("the first line of ", path, " is empty"));
  }
  return std::string(line);
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  std::string temporary = path + ".tmp.XXXXXX";
  Descriptor file(::mkostemp(temporary.data(), O_CLOEXEC));
  if (file.get() < 0) return WriteError(path, "create a temporary file");
  absl::Status written = WriteAll(file.get(), contents, path);
  if (written.ok() && ::fsync(file.get()) != 0) written = WriteError(path, "fsync");
  if (written.ok() && !file.Close()) written = WriteError(path, "close");
  if (written.ok() && ::rename(temporary.c_str(), path.c_str()) != 0) {
    written = WriteError(path, "rename");
  }
  if (!written.ok()) {
    ::unlink(temporary.c_str());
    return written;
  }
  // The rename is durable only once the directory is synced. The new contents are in place
  // whatever happens here, so a directory that cannot be synced is not reported as a failure.
  std::filesystem::path directory = std::filesystem::path(path).parent_path();
  std::error_code no_directory;  // Then there is nothing to sync.
  if (directory.empty()) directory = std::filesystem::current_path(no_directory);
  Descriptor parent(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.get() >= 0) ::fsync(parent.get());
  return absl::OkStatus();
}

std::string SecretFromEnvironment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(TrimWhitespace(value));
}

}  // namespace apim
