#pragma once
// The worker's response cache for cache-lookup/cache-store policies: whole responses of ordinary
// APIs, bounded by bytes and evicted least recently used first, each with its own expiry.
// Event streams and streamed (unbuffered) responses are never stored: the caller only offers
// complete buffered bodies. Thread-safe (one cache for all worker threads).

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace apim::dataplane {

struct CachedResponse {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::steady_clock::time_point stored;
  std::chrono::steady_clock::time_point expires;
  size_t bytes() const;
};

class ResponseCache {
 public:
  explicit ResponseCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  // The fresh entry for `key`, or null (an expired entry is dropped).
  std::shared_ptr<const CachedResponse> Lookup(const std::string& key,
                                               std::chrono::steady_clock::time_point now);
  // Stores (or replaces) an entry, evicting the least recently used ones to stay within the
  // byte budget. An entry larger than the whole budget is not stored.
  void Store(const std::string& key, CachedResponse response);

  size_t bytes() const;
  size_t entries() const;

 private:
  using Lru = std::list<std::string>;  // Keys, most recently used first.
  struct Slot {
    std::shared_ptr<const CachedResponse> response;
    Lru::iterator position;
  };
  void EraseLocked(std::unordered_map<std::string, Slot>::iterator it);

  const size_t max_bytes_;
  mutable std::mutex mu_;
  size_t bytes_ = 0;
  Lru lru_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace apim::dataplane
