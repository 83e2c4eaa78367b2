#pragma once
// Real child processes for integration tests: start a binary with arguments and environment,
// capture its output in files, signal it by PID and wait for it to exit — every wait bounded, and
// every wait on an event (process exit via pidfd, file creation via inotify), never a sleep loop.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apim::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ExitResult {
  bool exited = false;  // false: still running when the wait timed out.
  int code = -1;        // exit code, or 128 + signal number if killed by a signal.
};

// A running child process. Destruction kills it (SIGKILL) if it is still running.
class ChildProcess {
 public:
  // stdout and stderr go to `output_dir`/<name>.out and .err. `env` adds to the environment.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::filesystem::path& output_dir,
               const std::map<std::string, std::string>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal_number);
  ExitResult WaitForExit(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  std::string Stderr() const;
  const std::filesystem::path& stdout_path() const { return stdout_path_; }
  const std::filesystem::path& stderr_path() const { return stderr_path_; }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<ExitResult> result_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (bounded by `timeout`, after which it is killed and the test
// fails with exit code -1).
CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30),
                         const std::string& stdin_text = "");

// Waits until the file at `path` contains `needle` (watching it with inotify). False on timeout.
bool WaitForFileContent(const std::filesystem::path& path, std::string_view needle,
                        std::chrono::milliseconds timeout);

// Waits until `path` exists (created or renamed into place). False on timeout.
bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds timeout);

std::string ReadFile(const std::filesystem::path& path);

// Resident memory of a process (VmRSS), in KiB; 0 if it cannot be read.
uint64_t ResidentKib(pid_t pid);

// Whether a process's resident memory is its own: AddressSanitizer holds freed memory back (up to
// 256 MiB of quarantine) to catch use after free, so memory bounds are checked only without it.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kResidentMemoryIsOwn = false;
#else
inline constexpr bool kResidentMemoryIsOwn = true;
#endif

}  // namespace apim::testing
