#include "dataplane/relay/sse/event_boundary_tracker.h"

namespace apim::dataplane::sse {

void EventBoundaryTracker::Feed(std::string_view bytes) {
  static constexpr unsigned char kBom[] = {0xEF, 0xBB, 0xBF};
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (!started_) {
      if (byte == kBom[bom_bytes_seen_]) {
        if (++bom_bytes_seen_ == sizeof kBom) started_ = true;
        continue;
      }
      started_ = true;
      // A partial BOM is ordinary line content.
      if (bom_bytes_seen_ > 0) in_line_ = true;
    }
    if (byte == '\n' && last_was_cr_) {
      last_was_cr_ = false;  // Second half of CRLF: the line already ended at the CR.
      continue;
    }
    last_was_cr_ = byte == '\r';
    if (byte == '\r' || byte == '\n') {
      if (!in_line_) {
        // Empty line: dispatch the pending event, if any.
        if (fields_pending_) ++events_completed_;
        fields_pending_ = false;
      } else if (!line_is_comment_) {
        fields_pending_ = true;
      }
      in_line_ = false;
      line_is_comment_ = false;
      continue;
    }
    if (!in_line_) {
      in_line_ = true;
      line_is_comment_ = byte == ':';
    }
  }
}

}  // namespace apim::dataplane::sse
