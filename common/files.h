#pragma once
// Small files read and written whole by both planes and apimctl: a secret a person saved (read
// as its first line, whatever the editor put around it) and a file another process waits for
// (replaced atomically, so a reader sees the old contents or the new, never part of either).

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace apim {

// The first line of the file at `path` without surrounding whitespace, so a line ending of
// "\r\n" (a file saved on Windows) and a trailing newline or space do not become part of a
// token. Refuses a file that cannot be read, and one whose first line holds nothing else.
absl::StatusOr<std::string> ReadFirstLine(const std::string& path);

// Replaces the file at `path` with `contents`: written to a temporary file in the same directory
// (mode 0600), fsynced and renamed over `path`, then the directory is fsynced. After a crash the
// file holds the old contents or the new; a failure leaves no temporary file behind. Errors name
// the file.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// A secret from the environment variable `name`, trimmed as ReadFirstLine trims a file's line (a
// Kubernetes secret mounted as a variable often ends with a newline). Empty when it is not set.
std::string SecretFromEnvironment(const char* name);

}  // namespace apim
