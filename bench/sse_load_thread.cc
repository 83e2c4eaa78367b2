#include "bench/sse_load_thread.h"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <charconv>
#include <optional>

namespace apim::bench {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxLatencySamplesPerThread = 20'000'000;  // 160 MB; counted beyond, not kept

thread_local SSL_SESSION* latest_session = nullptr;

std::optional<int64_t> TimestampNs(std::string_view data) {
  constexpr std::string_view kKey = "\"ts_ns\":";
  size_t at = data.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = data.data() + at + kKey.size();
  int64_t value = 0;
  auto [end, ec] = std::from_chars(begin, data.data() + data.size(), value);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return value;
}

}  // namespace

void ThreadResults::Fail(uint64_t LoadErrors::*counter, std::string_view what,
                         const boost::system::error_code& ec) {
  ++(errors.*counter);
  if (errors.first.empty()) {
    errors.first = ec ? fmt::format("{}: {}", what, ec.message()) : std::string(what);
  }
}

StreamEventRecorder::StreamEventRecorder(LoadClock::time_point start,
                                         LoadClock::time_point steady_from, ThreadResults& out)
    : start_(start), steady_from_(steady_from), out_(out) {}

bool StreamEventRecorder::Feed(std::string_view piece, LoadClock::time_point received_at,
                               int64_t received_at_ns) {
  received_at_ = received_at;
  received_at_ns_ = received_at_ns;
  if (!parser_.Feed(piece, [this](const SseEvent& event) { Record(event); })) {
    out_.Fail(&LoadErrors::other, "event longer than the parser's limit");
    return false;
  }
  return true;
}

void StreamEventRecorder::Record(const SseEvent& event) {
  ++out_.events;
  if (first_event_) {
    first_event_ = false;
    ++out_.streams_with_events;
    out_.ttfe_ns.push_back((received_at_ - start_) / 1ns);
  }
  std::optional<int64_t> sent_at_ns = TimestampNs(event.data);
  if (!sent_at_ns) {
    ++out_.events_without_ts;
  } else if (out_.latency_ns.size() < kMaxLatencySamplesPerThread) {
    const int64_t latency_ns = std::max<int64_t>(0, received_at_ns_ - *sent_at_ns);
    out_.latency_ns.push_back(latency_ns);
    if (received_at_ >= steady_from_) out_.steady_latency_ns.push_back(latency_ns);
  }
}

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsEventStream(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  return boost::beast::iequals(media, "text/event-stream");
}

int KeepLatestSession(SSL* /*ssl*/, SSL_SESSION* session) {
  if (latest_session != nullptr) SSL_SESSION_free(latest_session);
  latest_session = session;
  return 1;  // the reference is ours now
}

SSL_SESSION* LatestSession() { return latest_session; }

void ForgetLatestSession() {
  if (latest_session != nullptr) SSL_SESSION_free(latest_session);
  latest_session = nullptr;
}

}  // namespace apim::bench
