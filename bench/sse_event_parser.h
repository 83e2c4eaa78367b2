#pragma once
// Incremental parser for a text/event-stream body, following the WHATWG HTML "event stream
// interpretation": lines end in LF, CR or CRLF (a CRLF may be split across two pieces), an empty
// line dispatches the event, lines starting with ':' are comments, a leading UTF-8 BOM is
// skipped, and an event cut off by the end of the stream is never dispatched. Feed it the body in
// whatever pieces the network delivers; it keeps only the unfinished line and event.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace apim::bench {

struct SseEvent {
  std::string type;  // "message" unless an `event:` field named another
  std::string data;  // the event's data lines joined with '\n'
  std::string id;    // the last event ID in force when the event was dispatched
};

class SseEventParser {
 public:
  using EventHandler = std::function<void(const SseEvent&)>;

  // A line or an event's data longer than `max_event_bytes` is an error rather than a reason to
  // grow without bound.
  explicit SseEventParser(size_t max_event_bytes = 1 << 20);

  // Parses the next piece of the body and calls `on_event` for every event it completes. Returns
  // false once the size limit has been exceeded; the parser then ignores all further input.
  bool Feed(std::string_view piece, const EventHandler& on_event);

  const std::string& last_event_id() const { return last_event_id_; }
  std::optional<uint64_t> retry_ms() const { return retry_ms_; }
  uint64_t comments() const { return comments_; }
  bool failed() const { return failed_; }

 private:
  void ProcessLine(std::string_view line, const EventHandler& on_event);

  size_t max_event_bytes_;
  std::string line_;        // the unfinished line carried over from earlier pieces
  bool after_cr_ = false;   // the last piece ended in CR: an LF starting the next one belongs to it
  bool first_line_ = true;  // only the stream's first line may start with a BOM
  std::string data_;
  std::string type_;
  std::string last_event_id_;
  std::optional<uint64_t> retry_ms_;
  uint64_t comments_ = 0;
  bool failed_ = false;
};

}  // namespace apim::bench
