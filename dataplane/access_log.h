#pragma once
// One JSON line per request on standard output: API, status, sizes, durations and, for streams,
// events relayed. Never bodies.

#include <chrono>
#include <cstdint>
#include <string>

namespace apim::dataplane {

struct AccessRecord {
  std::string api;  // Empty when no API matched.
  std::string method;
  std::string target;
  std::string client_ip;
  unsigned status = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  std::chrono::microseconds duration{0};
  std::chrono::microseconds time_to_first_byte{0};  // Backend response head received.
  bool stream = false;
  uint64_t events = 0;
  std::string error;  // Why the exchange failed or was cut, if it was.
};

// Writes the record as one line of JSON. Thread-safe.
void WriteAccessLog(const AccessRecord& record);

}  // namespace apim::dataplane
