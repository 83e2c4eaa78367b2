#pragma once
// Raw HTTP/2 frames, byte for byte, for tests that must send exactly what they mean (floods,
// malformed frames, sequences a real client library refuses to produce) over a RawConnection, and
// read back what the server wrote. Nothing here keeps connection state except H2HeaderDecoder.
//
// Frame types, flags, settings and error codes are nghttp2's constants (NGHTTP2_HEADERS,
// NGHTTP2_FLAG_END_STREAM, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, NGHTTP2_ENHANCE_YOUR_CALM).

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace apim::testing {

// Header fields in order, as (name, value); pseudo-header fields included.
using H2Fields = std::vector<std::pair<std::string, std::string>>;

// The 24 bytes a client sends before its first frame.
std::string_view H2ClientPreface();

// One frame: the 9-byte header and `payload`. `stream_id` is written as given, reserved bit
// included. REQUIRES: payload.size() < 2^24.
std::string H2Frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload);

std::string H2Settings(const std::vector<std::pair<uint16_t, uint32_t>>& settings);
std::string H2SettingsAck();
std::string H2Ping(uint64_t opaque, bool ack = false);
std::string H2RstStream(uint32_t stream_id, uint32_t error_code);
std::string H2WindowUpdate(uint32_t stream_id, uint32_t increment);
std::string H2Data(uint32_t stream_id, std::string_view data, bool end_stream);
std::string H2Headers(uint32_t stream_id, std::string_view header_block, bool end_stream,
                      bool end_headers = true);
std::string H2Continuation(uint32_t stream_id, std::string_view header_block, bool end_headers);
// (Named apart from H2Goaway, the GOAWAY an H2Connection received.)
std::string H2GoawayFrame(uint32_t last_stream_id, uint32_t error_code,
                          std::string_view debug = "");

// An HPACK block of `fields`, in order, each a never-indexed literal: the block adds nothing to
// the receiver's dynamic table, so it decodes on its own and can be sent any number of times, on
// any connection. Names are not checked or lowercased (a test may want them wrong).
std::string H2HeaderBlock(const H2Fields& fields);
// A request's block: :method, :scheme, :authority, :path, then `extra`.
std::string H2RequestHeaderBlock(std::string_view method, std::string_view path,
                                 std::string_view authority, const H2Fields& extra = {},
                                 std::string_view scheme = "http");

struct H2ParsedFrame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // Reserved bit cleared.
  std::string payload;     // As sent: padding and priority fields included.
};

// The whole frames at the start of `bytes` (a server sends no preface: its first frame starts at
// byte 0). Stops before an incomplete frame; `consumed`, if given, says how many bytes the frames
// returned took, so a caller can keep the rest for when more arrives.
std::vector<H2ParsedFrame> ParseH2Frames(std::string_view bytes, size_t* consumed = nullptr);

// Fields of received frames. Each throws std::invalid_argument if the frame is not of that type
// or its payload is too short.
uint32_t H2GoawayLastStream(const H2ParsedFrame& frame);
uint32_t H2GoawayErrorCode(const H2ParsedFrame& frame);
std::string H2GoawayDebug(const H2ParsedFrame& frame);
uint32_t H2RstStreamCode(const H2ParsedFrame& frame);
uint32_t H2WindowUpdateIncrement(const H2ParsedFrame& frame);
uint64_t H2PingOpaque(const H2ParsedFrame& frame);
std::vector<std::pair<uint16_t, uint32_t>> H2SettingsEntries(const H2ParsedFrame& frame);

// A header block as the sender meant it: each HEADERS frame's fragment (padding and priority
// removed) joined with the CONTINUATION frames after it. Only blocks that END_HEADERS completed,
// in the order they were sent (which is the order HPACK must decode them in).
struct H2ReceivedHeaderBlock {
  uint32_t stream_id = 0;
  bool end_stream = false;  // The HEADERS frame carried END_STREAM.
  std::string block;
};
std::vector<H2ReceivedHeaderBlock> H2HeaderBlocks(const std::vector<H2ParsedFrame>& frames);

// Decodes the header blocks one peer sent on one connection. HPACK's dynamic table carries over
// from block to block, so give it every block that peer sent, in order, to one decoder.
class H2HeaderDecoder {
 public:
  H2HeaderDecoder();
  ~H2HeaderDecoder();
  H2HeaderDecoder(const H2HeaderDecoder&) = delete;
  H2HeaderDecoder& operator=(const H2HeaderDecoder&) = delete;

  // The fields of one complete block; nullopt if it is not valid HPACK, after which this decoder,
  // like the connection it follows, is of no further use.
  std::optional<H2Fields> Decode(std::string_view block);

 private:
  nghttp2_hd_inflater* inflater_ = nullptr;
};

// The value of the first field called `name` (exact match), or "" if there is none.
std::string H2FieldValue(const H2Fields& fields, std::string_view name);

}  // namespace apim::testing
