#include "dataplane/admin/access_log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <mutex>
#include <string_view>

namespace apim::dataplane {
namespace {

// The length of the UTF-8 sequence at the start of `text` (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0 when it is not one.
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const auto continuation = [&](size_t i) { return i < text.size() && (byte(i) & 0xC0) == 0x80; };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // Overlong.
    if (lead == 0xED && byte(1) >= 0xA0) return 0;  // A surrogate.
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xF0 && byte(1) < 0x90) return 0;   // Overlong.
    if (lead == 0xF4 && byte(1) >= 0x90) return 0;  // Past U+10FFFF.
    return 4;
  }
  return 0;
}

void AppendJsonString(std::string_view text, std::string& out) {
  out.push_back('"');
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text.front());
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      // The common case: a run of printable ASCII goes in one piece.
      size_t run = 1;
      while (run < text.size()) {
        const auto next = static_cast<unsigned char>(text[run]);
        if (next < 0x20 || next >= 0x7F || next == '"' || next == '\\') break;
        ++run;
      }
      out.append(text.substr(0, run));
      text.remove_prefix(run);
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x80) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);  // Other controls, DEL.
        } else if (const size_t length = Utf8SequenceLength(text); length > 0) {
          out.append(text.substr(0, length));
          text.remove_prefix(length);
          continue;
        } else {
          out.append("\\ufffd");  // Not UTF-8: one replacement per byte.
        }
    }
    text.remove_prefix(1);
  }
  out.push_back('"');
}

void AppendField(std::string_view name, std::string_view value, std::string& out) {
  out.append(",\"").append(name).append("\":");
  AppendJsonString(value, out);
}

void AppendMilliseconds(std::string_view name, std::chrono::microseconds value, std::string& out) {
  fmt::format_to(std::back_inserter(out), ",\"{}\":{}", name, value.count() / 1000.0);
}

// Writes the lines whole, however the descriptor takes them. One writer at a time, so that the
// lines of two threads never interleave inside a line (a pipe keeps a write whole only up to
// PIPE_BUF).
void WriteOut(std::string_view lines) {
  static std::mutex writing;
  std::lock_guard lock(writing);
  while (!lines.empty()) {
    const ssize_t written = ::write(STDOUT_FILENO, lines.data(), lines.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // Nowhere to write: the log is lost, the request is not.
    lines.remove_prefix(static_cast<size_t>(written));
  }
}

thread_local AccessLogBatch* this_threads_batch = nullptr;

}  // namespace

void AppendAccessLine(const AccessRecord& record, std::chrono::system_clock::time_point now,
                      std::string& line) {
  fmt::format_to(
      std::back_inserter(line), "{{\"time\":{}",
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  AppendField("api", record.api, line);
  AppendField("method", record.method, line);
  AppendField("target", record.target, line);
  fmt::format_to(std::back_inserter(line),
                 ",\"status\":{},\"request_bytes\":{},\"response_bytes\":{}", record.status,
                 record.request_bytes, record.response_bytes);
  AppendMilliseconds("duration_ms", record.duration, line);
  AppendMilliseconds("ttfb_ms", record.time_to_first_byte, line);
  if (record.stream)
    fmt::format_to(std::back_inserter(line), ",\"stream\":true,\"events\":{}", record.events);
  if (!record.error.empty()) AppendField("error", record.error, line);
  if (record.log_client_ip) AppendField("client_ip", record.client_ip, line);
  if (!record.headers.empty()) {
    line.append(",\"headers\":{");
    bool first = true;
    for (const auto& [name, value] : record.headers) {
      if (!first) line.push_back(',');
      first = false;
      AppendJsonString(name, line);
      line.push_back(':');
      AppendJsonString(value, line);
    }
    line.push_back('}');
  }
  if (record.capture_bodies && !record.stream) {
    AppendField("request_body", record.request_body, line);
    AppendField("response_body", record.response_body, line);
  }
  line.append("}\n");
}

void WriteAccessLog(const AccessRecord& record) {
  if (this_threads_batch != nullptr) return this_threads_batch->Add(record);
  std::string line;
  AppendAccessLine(record, std::chrono::system_clock::now(), line);
  WriteOut(line);
}

AccessLogBatch::AccessLogBatch(boost::asio::any_io_executor executor)
    : executor_(std::move(executor)) {
  this_threads_batch = this;
}

AccessLogBatch::~AccessLogBatch() {
  this_threads_batch = nullptr;
  WriteOut(lines_);
}

void AccessLogBatch::Add(const AccessRecord& record) {
  AppendAccessLine(record, std::chrono::system_clock::now(), lines_);
  if (flush_posted_) return;
  // Posted: it runs after the handlers that are ready now, so one write carries their lines.
  flush_posted_ = true;
  boost::asio::post(executor_, [this] { Flush(); });
}

void AccessLogBatch::Flush() {
  flush_posted_ = false;
  WriteOut(lines_);
  lines_.clear();
  // A burst of large lines (logged bodies) should not keep its buffer for good.
  if (lines_.capacity() > 256 * 1024) lines_.shrink_to_fit();
}

}  // namespace apim::dataplane
