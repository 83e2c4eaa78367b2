#pragma once
// Follows a text/event-stream as it is relayed and tells whether the stream is between events,
// so a heartbeat comment can be injected without splitting or changing an event.
//
// Rules from the WHATWG event-stream format: lines end with LF, CR or CRLF; a line starting with
// ':' is a comment; an empty line ends (dispatches) the event built from the field lines before
// it; a UTF-8 BOM may open the stream. A comment written while no field line is pending cannot
// change any event, so that is the boundary. A CR that may be the first half of a CRLF still ends
// its line: an LF that follows an injected comment reads as an empty line with no fields pending,
// which dispatches nothing.

#include <cstdint>
#include <string_view>

namespace apim::dataplane::sse {

class EventBoundaryTracker {
 public:
  // Feeds the next bytes of the stream, in order, in pieces of any size.
  void Feed(std::string_view bytes);

  // True when nothing is pending: not inside a line, and no field line waiting for its event's
  // terminating empty line.
  bool AtEventBoundary() const {
    // Inside a leading BOM is not a boundary: a comment there would break the BOM.
    const bool inside_bom = !started_ && bom_bytes_seen_ > 0;
    return !in_line_ && !fields_pending_ && !inside_bom;
  }

  // Events dispatched so far (empty lines that ended at least one field line).
  uint64_t events_completed() const { return events_completed_; }

 private:
  bool in_line_ = false;          // Bytes of a line seen, its end not yet.
  bool line_is_comment_ = false;  // The current line started with ':'.
  bool fields_pending_ = false;   // A field line was seen since the last empty line.
  bool last_was_cr_ = false;      // The previous byte was CR, so an LF now completes CRLF.
  uint8_t bom_bytes_seen_ = 0;    // Position inside a leading BOM (EF BB BF).
  bool started_ = false;          // Past the point where a BOM may appear.
  uint64_t events_completed_ = 0;
};

}  // namespace apim::dataplane::sse
