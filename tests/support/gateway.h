#pragma once
// Runs the real apim-gateway binary with a snapshot file on ephemeral loopback ports, and the
// real sse-test-backend binary it can proxy to.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace apim::testing {

// The counters of an sse-test-backend (its GET /stats).
struct BackendStats {
  uint64_t connections_accepted = 0;
  uint64_t open_streams = 0;
  uint64_t streams_started = 0;
  uint64_t streams_closed_by_client = 0;
  uint64_t events_sent = 0;
};

// The sse-test-backend process on an ephemeral port.
class BackendProcess {
 public:
  explicit BackendProcess(const std::filesystem::path& dir);
  uint16_t port() const { return port_; }
  ChildProcess& process() { return *process_; }
  // Its counters, asked for directly (not through a gateway). With `closed_by_client` > 0 the
  // backend answers once that many streams have been closed by their client, or after `timeout`
  // (at most 10 s) with the counts as they are.
  BackendStats Stats(uint64_t closed_by_client = 0,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

 private:
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
};

class GatewayProcess {
 public:
  // Standalone: `snapshot_json` is written to dir/config.json; `extra_args` are added. Throws
  // (with the process's stderr) if it exits or does not listen within 20 s.
  // APIM_TEST_GATEWAY_BIN, if set, names the binary to run instead of the one built with the
  // tests (to run a test against another build).
  GatewayProcess(const std::filesystem::path& dir, const std::string& snapshot_json,
                 std::vector<std::string> extra_args = {});
  // Joins `gateway` on the control plane as `worker_id`, caching snapshots in
  // dir/<worker_id>.snapshot; `extra_args` are added. Returns once it listens (it may not have a
  // config yet).
  static std::unique_ptr<GatewayProcess> Join(const std::filesystem::path& dir,
                                              const std::string& control_plane,
                                              const std::string& gateway, const std::string& token,
                                              const std::string& worker_id,
                                              std::vector<std::string> extra_args = {});
  uint16_t port() const { return port_; }
  uint16_t admin_port() const { return admin_port_; }
  uint16_t tls_port() const { return tls_port_; }  // With --tls-listen 127.0.0.1:0.
  std::filesystem::path config_path() const { return dir_ / "config.json"; }
  ChildProcess& process() { return *process_; }
  // Rewrites the config file and sends SIGHUP.
  void Reload(const std::string& snapshot_json);

 private:
  GatewayProcess(const std::filesystem::path& dir, const std::string& name,
                 std::vector<std::string> args, std::map<std::string, std::string> env);
  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> process_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  uint16_t tls_port_ = 0;
};

// An API (a JSON object of apim.v1.Api) published at /NAME, its backend at
// http://127.0.0.1:PORT followed by `backend_path`; `extra` adds fields, e.g. `,"sse":true`.
std::string ApiJson(const std::string& name, uint16_t backend_port, const std::string& extra = "",
                    const std::string& backend_path = "");
// A snapshot with one tier and the given APIs (each a JSON object of apim.v1.Api).
std::string SnapshotJson(const std::vector<std::string>& apis, bool long_lived = true,
                         int version = 1);
// The same with a tier given as a JSON object of apim.v1.Tier.
// `extra_fields` is added to the snapshot object, e.g. `"policies":[...]`.
std::string SnapshotJsonWithTier(const std::string& tier_json, const std::vector<std::string>& apis,
                                 const std::string& extra_fields = "");

// A policy of a snapshot (a JSON object of apim.v1.Policy): `xml` at `scope` ("global",
// "api:NAME"), for the snapshot's "policies" array.
std::string PolicyJson(const std::string& scope, const std::string& xml);

}  // namespace apim::testing
