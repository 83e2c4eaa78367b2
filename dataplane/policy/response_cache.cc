#include "dataplane/policy/response_cache.h"

namespace apim::dataplane {

size_t CachedResponse::bytes() const {
  size_t total = body.size() + 64;
  for (const auto& [name, value] : headers) total += name.size() + value.size() + 32;
  return total;
}

std::shared_ptr<const CachedResponse> ResponseCache::Lookup(
    const std::string& key, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  auto found = slots_.find(key);
  if (found == slots_.end()) return nullptr;
  if (found->second.response->expires <= now) {
    EraseLocked(found);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, found->second.position);
  return found->second.response;
}

void ResponseCache::Store(const std::string& key, CachedResponse response) {
  auto entry = std::make_shared<const CachedResponse>(std::move(response));
  const size_t size = entry->bytes() + key.size();
  if (size > max_bytes_) return;
  std::lock_guard lock(mu_);
  if (auto found = slots_.find(key); found != slots_.end()) EraseLocked(found);
  while (bytes_ + size > max_bytes_ && !lru_.empty()) EraseLocked(slots_.find(lru_.back()));
  lru_.push_front(key);
  slots_.emplace(key, Slot{std::move(entry), lru_.begin()});
  bytes_ += size;
}

void ResponseCache::EraseLocked(std::unordered_map<std::string, Slot>::iterator it) {
  bytes_ -= it->second.response->bytes() + it->first.size();
  lru_.erase(it->second.position);
  slots_.erase(it);
}

size_t ResponseCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t ResponseCache::entries() const {
  std::lock_guard lock(mu_);
  return slots_.size();
}

}  // namespace apim::dataplane
