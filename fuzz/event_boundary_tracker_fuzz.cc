// libFuzzer target for dataplane/sse/event_boundary_tracker.h.
//
// Input: three control bytes that choose where the stream is split into pieces, then the stream.
// The tracker is fed the pieces and compared with a reference model written here, straight from
// the WHATWG event-stream rules and the tracker's header, that parses the whole stream at once:
//   - events_completed() equals the reference's count after every piece, and after the whole;
//   - feeding in pieces and feeding all at once end in the same state;
//   - AtEventBoundary() after every piece matches the reference;
//   - the reason the tracker exists: wherever it says "at a boundary", injecting the heartbeat
//     comment ":\n\n" there leaves every event a client would parse unchanged, whatever follows.
// A violated invariant prints what and where, then aborts (a crash, for libFuzzer).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/relay/sse/event_boundary_tracker.h"

namespace {

using apim::dataplane::sse::EventBoundaryTracker;

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kHeartbeat = ":\n\n";

// What a client's parser has made of a stream so far.
struct Parsed {
  // Each dispatched event as its field lines (lines that are neither empty nor comments).
  std::vector<std::vector<std::string>> events;
  std::vector<std::string> pending_fields;  // Field lines waiting for their empty line.
  std::string partial_line;                 // A line not yet ended.
  bool in_line = false;                     // Some byte of a line seen, its end not yet.
  // The stream so far is a proper prefix of a BOM: whether those bytes are a BOM (dropped) or
  // line content is not decided yet.
  bool bom_undecided = false;

  bool operator==(const Parsed&) const = default;
  // Nothing pending, so a comment written now cannot join or split an event.
  bool AtBoundary() const { return !in_line && pending_fields.empty() && !bom_undecided; }
};

// The reference: the whole stream at once. Lines end at CRLF, LF or CR; a BOM is dropped only
// when it opens the stream; an empty line dispatches the field lines before it, if any.
Parsed Parse(std::string_view stream) {
  Parsed out;
  if (stream.starts_with(kBom)) {
    stream.remove_prefix(kBom.size());
  } else if (!stream.empty() && kBom.starts_with(stream)) {
    out.bom_undecided = true;
    return out;
  }
  size_t at = 0;
  while (at < stream.size()) {
    const size_t end = stream.find_first_of("\r\n", at);
    if (end == std::string_view::npos) {
      out.partial_line = std::string(stream.substr(at));
      out.in_line = true;
      break;
    }
    const std::string_view line = stream.substr(at, end - at);
    if (line.empty()) {
      if (!out.pending_fields.empty()) out.events.push_back(std::move(out.pending_fields));
      out.pending_fields.clear();
    } else if (line.front() != ':') {
      out.pending_fields.emplace_back(line);
    }
    at = end + 1;
    if (stream[end] == '\r' && at < stream.size() && stream[at] == '\n') ++at;
  }
  return out;
}

std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", c);
      out += escaped;
    }
  }
  return out;
}

[[noreturn]] void Fail(const char* what, std::string_view stream, size_t at) {
  std::fprintf(stderr, "event_boundary_tracker_fuzz: %s\n  at byte %zu of \"%s\"\n", what, at,
               Printable(stream).c_str());
  std::abort();
}

// Checks the tracker, having been fed stream[0, at), against the reference.
void CheckAgainstReference(const EventBoundaryTracker& tracker, std::string_view stream,
                           size_t at) {
  const Parsed reference = Parse(stream.substr(0, at));
  if (tracker.events_completed() != reference.events.size()) {
    Fail("events_completed() differs from the reference", stream, at);
  }
  if (tracker.AtEventBoundary() != reference.AtBoundary()) {
    Fail(tracker.AtEventBoundary() ? "AtEventBoundary() is true, the reference has bytes pending"
                                   : "AtEventBoundary() is false, the reference has none pending",
         stream, at);
  }
}

// Where the tracker says "boundary" after stream[0, at), a heartbeat injected there must change
// no event the client parses, now or later.
void CheckHeartbeatIsHarmless(std::string_view stream, size_t at) {
  std::string injected(stream.substr(0, at));
  injected += kHeartbeat;
  injected += stream.substr(at);
  Parsed with = Parse(injected);
  Parsed without = Parse(stream);
  // The injected stream is never a mere BOM prefix; where the original one is, its bytes show up
  // elsewhere in `with` (as content), which the comparison catches.
  with.bom_undecided = without.bom_undecided;
  if (with != without) {
    Fail("a heartbeat injected where AtEventBoundary() was true changed the events", stream, at);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kControlBytes = 3;
  if (size < kControlBytes) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + kControlBytes,
                                size - kControlBytes);

  // Split points chosen by the control bytes, in order, possibly repeated (an empty piece).
  std::vector<size_t> cuts;
  for (size_t i = 0; i < kControlBytes; ++i) cuts.push_back(stream.size() * data[i] / 255);
  std::sort(cuts.begin(), cuts.end());
  cuts.push_back(stream.size());

  EventBoundaryTracker pieces;
  CheckAgainstReference(pieces, stream, 0);
  // Before the first byte the relay, not the tracker, keeps a heartbeat harmless: it drops a
  // leading BOM that arrives whole in the first piece (see RelayBody). A BOM split across the
  // first pieces after such a heartbeat is a known, documented gap.
  const bool starts_with_bom = std::string_view("\xEF\xBB\xBF").starts_with(stream.substr(0, 3));
  if (pieces.AtEventBoundary() && !starts_with_bom) CheckHeartbeatIsHarmless(stream, 0);
  size_t fed = 0;
  for (size_t cut : cuts) {
    pieces.Feed(stream.substr(fed, cut - fed));
    fed = cut;
    CheckAgainstReference(pieces, stream, fed);
    if (pieces.AtEventBoundary() && !(fed == 0 && starts_with_bom)) {
      CheckHeartbeatIsHarmless(stream, fed);
    }
  }

  EventBoundaryTracker whole;
  whole.Feed(stream);
  if (whole.events_completed() != pieces.events_completed() ||
      whole.AtEventBoundary() != pieces.AtEventBoundary()) {
    Fail("feeding in pieces and all at once end differently", stream, stream.size());
  }

  // Byte by byte over a bounded prefix: every position is a split point there.
  EventBoundaryTracker bytes;
  const size_t prefix = std::min<size_t>(stream.size(), 64);
  for (size_t i = 0; i < prefix; ++i) {
    bytes.Feed(stream.substr(i, 1));
    CheckAgainstReference(bytes, stream, i + 1);
    if (bytes.AtEventBoundary()) CheckHeartbeatIsHarmless(stream, i + 1);
  }
  return 0;
}
