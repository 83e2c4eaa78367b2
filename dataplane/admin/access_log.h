#pragma once
// One JSON line per request on standard output: API, status, sizes, durations and, for streams,
// events relayed. Headers and the first bytes of bodies only where a diagnostic setting asks for
// them, and bodies never for event streams.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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
  // Per the API's diagnostic setting: logged request headers and the first bytes of bodies
  // (never for event streams).
  bool log_client_ip = true;
  std::vector<std::pair<std::string, std::string>> headers;
  bool capture_bodies = false;
  std::string request_body;
  std::string response_body;
};

// Writes the record as one line of JSON. Thread-safe.
void WriteAccessLog(const AccessRecord& record);

}  // namespace apim::dataplane
