#pragma once
// The data-plane workers the control plane knows: who joined which gateway from where, which
// snapshot version each applied (ACK) or refused (NACK, with the reason), and when each was last
// heard from. A worker is known by its gateway and worker id together, so workers of different
// gateways may share an id without hiding one another. Disconnected workers are listed until they
// age out. Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "apim/v1/config_discovery.pb.h"
#include "apim/v1/management.pb.h"

namespace apim::controlplane {

class WorkerRegistry {
 public:
  // (gateway, worker id).
  using Key = std::pair<std::string, std::string>;

  explicit WorkerRegistry(std::chrono::seconds age_out = std::chrono::minutes(5))
      : age_out_(age_out) {}

  // Records a worker's stream; returns a serial that identifies this connection (a worker that
  // reconnects before its old stream ends gets a new one).
  uint64_t Connected(const v1::Hello& hello, const std::string& peer);
  void Acked(const Key& worker, uint64_t version);
  void Nacked(const Key& worker, uint64_t version, const std::string& error);
  // `reason` is empty when the worker ended the stream itself.
  void Disconnected(const Key& worker, uint64_t serial, const std::string& reason);

  std::vector<v1::GatewayWorker> List(const std::string& gateway);

 private:
  struct Entry {
    v1::GatewayWorker worker;
    uint64_t serial = 0;
    std::chrono::steady_clock::time_point last_contact;
  };
  void Touch(Entry& entry);

  std::chrono::seconds age_out_;
  std::mutex mu_;
  uint64_t next_serial_ = 1;
  std::map<Key, Entry> workers_;
};

}  // namespace apim::controlplane
