#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace apim::testing {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry; ++entry) {
    std::string text(*entry);
    size_t eq = text.find('=');
    if (eq != std::string::npos) merged[text.substr(0, eq)] = text.substr(eq + 1);
  }
  for (const auto& [key, value] : extra) merged[key] = value;
  std::vector<std::string> out;
  for (const auto& [key, value] : merged) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "apim-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

ChildProcess::ChildProcess(const std::string& binary, const std::vector<std::string>& args,
                           const std::filesystem::path& output_dir,
                           const std::map<std::string, std::string>& env) {
  static std::atomic<int> counter{0};
  std::string name = std::filesystem::path(binary).filename().string() + "-" +
                     std::to_string(counter.fetch_add(1));
  stdout_path_ = output_dir / (name + ".out");
  stderr_path_ = output_dir / (name + ".err");

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv_strings{binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings = MergedEnvironment(env);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);
  int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + binary + ": " + std::strerror(rc));
  pidfd_ = PidfdOpen(pid_);
  if (pidfd_ < 0) throw std::runtime_error("pidfd_open failed");
}

ChildProcess::~ChildProcess() {
  if (!result_) {
    Signal(SIGKILL);
    WaitForExit(std::chrono::seconds(10));
  }
  if (pidfd_ >= 0) close(pidfd_);
}

void ChildProcess::Signal(int signal_number) {
  if (!result_) kill(pid_, signal_number);
}

ExitResult ChildProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (result_) return *result_;
  pollfd fd{pidfd_, POLLIN, 0};
  if (poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return ExitResult{};
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) return ExitResult{};
  ExitResult result{true, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
  result_ = result;
  return result;
}

std::string ChildProcess::Stdout() const { return ReadFile(stdout_path_); }
std::string ChildProcess::Stderr() const { return ReadFile(stderr_path_); }

CommandResult RunCommand(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout, const std::string& stdin_text) {
  TempDir output;
  std::vector<std::string> full_args = args;
  std::string command = binary;
  if (!stdin_text.empty()) {
    // Feed standard input from a file through a shell, keeping the child's own exit code.
    std::filesystem::path input = output.path() / "stdin";
    std::ofstream(input) << stdin_text;
    full_args = {"-c", "exec \"$0\" \"$@\" < " + input.string(), binary};
    full_args.insert(full_args.end(), args.begin(), args.end());
    command = "/bin/sh";
  }
  ChildProcess child(command, full_args, output.path(), env);
  ExitResult exit = child.WaitForExit(timeout);
  return CommandResult{exit.exited ? exit.code : -1, child.Stdout(), child.Stderr()};
}

namespace {

// Waits until `done()` holds, re-checking it whenever inotify reports `mask` on `watched`.
// Checked once after the watch is set, so an event between the two is not lost.
template <typename Done>
bool WaitWithInotify(const std::filesystem::path& watched, uint32_t mask,
                     std::chrono::milliseconds timeout, Done done) {
  int fd = inotify_init1(IN_CLOEXEC);
  if (fd < 0) return false;
  inotify_add_watch(fd, watched.c_str(), mask);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool finished = done();
  while (!finished) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buffer[4096];
      (void)read(fd, buffer, sizeof buffer);
    }
    finished = done();
  }
  close(fd);
  return finished;
}

}  // namespace

bool WaitForFile(const std::filesystem::path& path, std::chrono::milliseconds timeout) {
  return WaitWithInotify(path.parent_path(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE, timeout,
                         [&] { return std::filesystem::exists(path); });
}

bool WaitForFileContent(const std::filesystem::path& path, std::string_view needle,
                        std::chrono::milliseconds timeout) {
  return WaitWithInotify(path, IN_MODIFY, timeout,
                         [&] { return ReadFile(path).find(needle) != std::string::npos; });
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

uint64_t ResidentKib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return 0;
}

}  // namespace apim::testing
