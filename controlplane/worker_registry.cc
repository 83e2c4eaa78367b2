#include "controlplane/worker_registry.h"

#include <google/protobuf/util/time_util.h>

namespace apim::controlplane {

using google::protobuf::util::TimeUtil;

void WorkerRegistry::Touch(Entry& entry) {
  entry.last_contact = std::chrono::steady_clock::now();
  *entry.worker.mutable_last_contact() = TimeUtil::GetCurrentTime();
}

uint64_t WorkerRegistry::Connected(const v1::Hello& hello, const std::string& peer) {
  std::lock_guard lock(mu_);
  Entry& entry = workers_[{hello.gateway(), hello.worker_id()}];
  entry.serial = next_serial_++;
  v1::GatewayWorker& worker = entry.worker;
  worker.Clear();
  worker.set_worker_id(hello.worker_id());
  worker.set_gateway(hello.gateway());
  worker.set_address(hello.address().empty() ? peer : hello.address());
  worker.set_build_version(hello.build_version());
  worker.set_connected(true);
  worker.set_acked_version(hello.version());
  *worker.mutable_connected_since() = TimeUtil::GetCurrentTime();
  Touch(entry);
  return entry.serial;
}

void WorkerRegistry::Acked(const Key& key, uint64_t version) {
  std::lock_guard lock(mu_);
  auto found = workers_.find(key);
  if (found == workers_.end()) return;
  found->second.worker.set_acked_version(version);
  found->second.worker.clear_nacked_version();
  found->second.worker.clear_last_nack_error();
  Touch(found->second);
}

void WorkerRegistry::Nacked(const Key& key, uint64_t version, const std::string& error) {
  std::lock_guard lock(mu_);
  auto found = workers_.find(key);
  if (found == workers_.end()) return;
  found->second.worker.set_nacked_version(version);
  found->second.worker.set_last_nack_error(error);
  Touch(found->second);
}

void WorkerRegistry::Disconnected(const Key& key, uint64_t serial, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto found = workers_.find(key);
  if (found == workers_.end() || found->second.serial != serial) return;
  found->second.worker.set_connected(false);
  found->second.worker.set_disconnect_reason(reason);
  Touch(found->second);
}

std::vector<v1::GatewayWorker> WorkerRegistry::List(const std::string& gateway) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  std::vector<v1::GatewayWorker> out;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->second.worker.connected() && now - it->second.last_contact > age_out_) {
      it = workers_.erase(it);
      continue;
    }
    if (it->first.first == gateway) out.push_back(it->second.worker);
    ++it;
  }
  return out;
}

}  // namespace apim::controlplane
