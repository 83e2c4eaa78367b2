#pragma once
// One JSON line per request on standard output: API, status, sizes, durations and, for streams,
// events relayed. Headers and the first bytes of bodies only where a diagnostic setting asks for
// them, and bodies never for event streams.
//
// Every request writes a line, so the line is formatted straight into a byte buffer (no JSON
// tree), and a worker thread writes its lines once per turn of its event loop rather than once
// per request (AccessLogBatch): the lines of the requests one turn finished go out in one write,
// right after that turn.

#include <boost/asio/any_io_executor.hpp>
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

// Appends the record as one line of JSON, with its newline, to `line`. Strings are escaped as
// JSON requires, control bytes included, and bytes that are not UTF-8 become U+FFFD: whatever a
// client sends, the line stays one valid JSON object.
void AppendAccessLine(const AccessRecord& record, std::chrono::system_clock::time_point now,
                      std::string& line);

// Writes the record's line: into the thread's batch if it has one, else at once. Thread-safe.
void WriteAccessLog(const AccessRecord& record);

// While it lives, the calling thread's access lines are gathered and written once per turn of
// the event loop of `executor` (which this thread runs), and when it is destroyed.
class AccessLogBatch {
 public:
  explicit AccessLogBatch(boost::asio::any_io_executor executor);
  ~AccessLogBatch();
  AccessLogBatch(const AccessLogBatch&) = delete;
  AccessLogBatch& operator=(const AccessLogBatch&) = delete;

  void Add(const AccessRecord& record);

 private:
  void Flush();

  boost::asio::any_io_executor executor_;
  std::string lines_;
  bool flush_posted_ = false;
};

}  // namespace apim::dataplane
