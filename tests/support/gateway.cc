#include "tests/support/gateway.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/files.h"
#include "tests/support/raw_http.h"

namespace apim::testing {
namespace {

// Atomically, so the gateway never reads half a config.
void WriteFile(const std::filesystem::path& path, const std::string& text) {
  if (absl::Status written = WriteFileAtomically(path.string(), text); !written.ok()) {
    throw std::runtime_error(std::string(written.message()));
  }
}

// Waits for the port file, giving up early if the process exits (a refused flag, say).
std::string WaitForPortFile(const std::filesystem::path& path, ChildProcess& process) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!WaitForFile(path, std::chrono::milliseconds(100))) {
    const ExitResult exit = process.WaitForExit(std::chrono::milliseconds(0));
    if (exit.exited || std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(
          path.filename().string() + " never appeared" +
          (exit.exited ? " (the process exited with code " + std::to_string(exit.code) + ")" : "") +
          "; stderr:\n" + process.Stderr());
    }
  }
  return ReadFile(path);
}

std::string GatewayBinary() {
  const char* chosen = std::getenv("APIM_TEST_GATEWAY_BIN");
  return chosen != nullptr && *chosen != '\0' ? chosen : APIM_GATEWAY_BIN;
}

}  // namespace

BackendProcess::BackendProcess(const std::filesystem::path& dir) {
  // A name of its own, so that a second backend in the same directory does not read this one's.
  static std::atomic<int> started{0};
  const std::filesystem::path port_file =
      dir / ("backend-" + std::to_string(started.fetch_add(1)) + ".port");
  process_ = std::make_unique<ChildProcess>(
      SSE_TEST_BACKEND_BIN,
      std::vector<std::string>{"--listen", "127.0.0.1:0", "--port-file", port_file.string()}, dir);
  port_ = static_cast<uint16_t>(std::stoi(WaitForPortFile(port_file, *process_)));
}

BackendStats BackendProcess::Stats(uint64_t closed_by_client, std::chrono::milliseconds timeout) {
  const SimpleResponse stats =
      HttpRequest(port_, "GET",
                  "/stats?wait_closed_by_client=" + std::to_string(closed_by_client) +
                      "&timeout_ms=" + std::to_string(timeout.count()),
                  "", timeout + std::chrono::seconds(5));
  if (stats.status != 200) throw std::runtime_error("backend /stats failed: " + stats.head);
  return BackendStats{
      JsonNumber(stats.body, "connections_accepted"), JsonNumber(stats.body, "open_streams"),
      JsonNumber(stats.body, "streams_started"), JsonNumber(stats.body, "streams_closed_by_client"),
      JsonNumber(stats.body, "events_sent")};
}

GatewayProcess::GatewayProcess(const std::filesystem::path& dir, const std::string& name,
                               std::vector<std::string> args,
                               std::map<std::string, std::string> env)
    : dir_(dir) {
  const std::filesystem::path port_file = dir / (name + ".ports");
  std::filesystem::remove(port_file);
  std::vector<std::string> common = {
      "--listen",    "127.0.0.1:0",      "--admin-listen", "127.0.0.1:0",
      "--port-file", port_file.string(), "--threads",      "2"};
  args.insert(args.end(), common.begin(), common.end());
  process_ = std::make_unique<ChildProcess>(GatewayBinary(), args, dir, env);
  std::istringstream ports(WaitForPortFile(port_file, *process_));
  ports >> port_ >> admin_port_ >> tls_port_;
}

GatewayProcess::GatewayProcess(const std::filesystem::path& dir, const std::string& snapshot_json,
                               std::vector<std::string> extra_args)
    : GatewayProcess(dir, "gateway",
                     [&] {
                       WriteFile(dir / "config.json", snapshot_json);
                       std::vector<std::string> args = {"--config", (dir / "config.json").string()};
                       args.insert(args.end(), extra_args.begin(), extra_args.end());
                       return args;
                     }(),
                     {}) {}

std::unique_ptr<GatewayProcess> GatewayProcess::Join(
    const std::filesystem::path& dir, const std::string& control_plane, const std::string& gateway,
    const std::string& token, const std::string& worker_id, std::vector<std::string> extra_args) {
  std::vector<std::string> args{"--control-plane",  control_plane,
                                "--gateway",        gateway,
                                "--worker-id",      worker_id,
                                "--snapshot-cache", (dir / (worker_id + ".snapshot")).string()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return std::unique_ptr<GatewayProcess>(
      new GatewayProcess(dir, worker_id, std::move(args), {{"APIM_GATEWAY_TOKEN", token}}));
}

void GatewayProcess::Reload(const std::string& snapshot_json) {
  WriteFile(config_path(), snapshot_json);
  process_->Signal(SIGHUP);
}

std::string ApiJson(const std::string& name, uint16_t backend_port, const std::string& extra,
                    const std::string& backend_path) {
  return R"({"name":")" + name + R"(","pathPrefix":"/)" + name +
         R"(","backendUrl":"http://127.0.0.1:)" + std::to_string(backend_port) + backend_path +
         "\"" + extra + "}";
}

std::string SnapshotJsonWithTier(const std::string& tier_json, const std::vector<std::string>& apis,
                                 const std::string& extra_fields) {
  std::string json =
      "{\"version\":\"1\",\"gateway\":\"test\",\"tier\":" + tier_json + ",\"apis\":[";
  for (size_t i = 0; i < apis.size(); ++i) json += (i ? "," : "") + apis[i];
  return json + "]" + (extra_fields.empty() ? "" : "," + extra_fields) + "}";
}

std::string PolicyJson(const std::string& scope, const std::string& xml) {
  return nlohmann::json{{"scope", scope}, {"xml", xml}}.dump();
}

std::string SnapshotJson(const std::vector<std::string>& apis, bool long_lived, int version) {
  std::string json =
      "{\"version\":\"" + std::to_string(version) +
      "\",\"gateway\":\"test\",\"tier\":{\"name\":\"" + (long_lived ? "standard" : "consumption") +
      "\",\"longLivedConnections\":" + (long_lived ? "true" : "false") +
      ",\"maxResponseDurationSeconds\":" + (long_lived ? "0" : "30") +
      ",\"idleTimeoutSeconds\":240,\"heartbeatIntervalSeconds\":" + (long_lived ? "30" : "0") +
      "},\"apis\":[";
  for (size_t i = 0; i < apis.size(); ++i) json += (i ? "," : "") + apis[i];
  return json + "]}";
}

}  // namespace apim::testing
