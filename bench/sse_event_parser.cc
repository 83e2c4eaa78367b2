#include "bench/sse_event_parser.h"

#include <charconv>

namespace apim::bench {

SseEventParser::SseEventParser(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

bool SseEventParser::Feed(std::string_view piece, const EventHandler& on_event) {
  if (failed_) return false;
  size_t pos = 0;
  if (after_cr_ && !piece.empty()) {
    if (piece.front() == '\n') pos = 1;
    after_cr_ = false;
  }
  // Bounded by the piece: every pass consumes at least one byte.
  while (pos < piece.size()) {
    size_t end = piece.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) {
      line_.append(piece.substr(pos));
      if (line_.size() > max_event_bytes_) failed_ = true;
      break;
    }
    if (line_.empty()) {
      ProcessLine(piece.substr(pos, end - pos), on_event);
    } else {
      line_.append(piece.substr(pos, end - pos));
      ProcessLine(line_, on_event);
      line_.clear();
    }
    if (failed_) break;
    pos = end + 1;
    if (piece[end] == '\r') {
      if (pos == piece.size()) {
        after_cr_ = true;
      } else if (piece[pos] == '\n') {
        ++pos;
      }
    }
  }
  return !failed_;
}

void SseEventParser::ProcessLine(std::string_view line, const EventHandler& on_event) {
  if (first_line_) {
    first_line_ = false;
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  }
  if (line.size() > max_event_bytes_) {
    failed_ = true;
    return;
  }
  if (line.empty()) {
    // Dispatch. An event without data lines dispatches nothing but still resets the type.
    if (data_.empty()) {
      type_.clear();
      return;
    }
    if (data_.back() == '\n') data_.pop_back();
    SseEvent event{type_.empty() ? "message" : type_, std::move(data_), last_event_id_};
    data_.clear();
    type_.clear();
    on_event(event);
    return;
  }
  if (line.front() == ':') {
    ++comments_;
    return;
  }
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_event_bytes_) {
      failed_ = true;
      return;
    }
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    type_ = value;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = value;
  } else if (field == "retry") {
    uint64_t ms = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (!value.empty() && ec == std::errc() && end == value.data() + value.size()) retry_ms_ = ms;
  }
  // Any other field is ignored, as the spec says.
}

}  // namespace apim::bench
