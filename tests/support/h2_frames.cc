#include "tests/support/h2_frames.h"

#include <algorithm>
#include <cassert>
#include <stdexcept>

namespace apim::testing {
namespace {

constexpr size_t kFrameHeaderSize = 9;

void AppendBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out += static_cast<char>((value >> shift) & 0xff);
  }
}

uint64_t ReadBigEndian(std::string_view bytes, size_t at, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[at + static_cast<size_t>(i)]);
  }
  return value;
}

// REQUIRES of every accessor: the frame is what the caller believes, with room for its fields.
void Require(const H2ParsedFrame& frame, uint8_t type, size_t min_payload, const char* what) {
  if (frame.type != type || frame.payload.size() < min_payload) {
    throw std::invalid_argument(std::string(what) + ": frame of type " +
                                std::to_string(frame.type) + " with a " +
                                std::to_string(frame.payload.size()) + "-byte payload");
  }
}

std::string_view AsView(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace

std::string_view H2ClientPreface() { return {NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN}; }

std::string H2Frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload) {
  assert(payload.size() < (1u << 24));
  std::string frame;
  frame.reserve(kFrameHeaderSize + payload.size());
  AppendBigEndian(frame, payload.size(), 3);
  frame += static_cast<char>(type);
  frame += static_cast<char>(flags);
  AppendBigEndian(frame, stream_id, 4);
  frame += payload;
  return frame;
}

std::string H2Settings(const std::vector<std::pair<uint16_t, uint32_t>>& settings) {
  std::string payload;
  for (const auto& [id, value] : settings) {
    AppendBigEndian(payload, id, 2);
    AppendBigEndian(payload, value, 4);
  }
  return H2Frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_NONE, 0, payload);
}

std::string H2SettingsAck() { return H2Frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, ""); }

std::string H2Ping(uint64_t opaque, bool ack) {
  std::string payload;
  AppendBigEndian(payload, opaque, 8);
  return H2Frame(NGHTTP2_PING, ack ? NGHTTP2_FLAG_ACK : NGHTTP2_FLAG_NONE, 0, payload);
}

std::string H2RstStream(uint32_t stream_id, uint32_t error_code) {
  std::string payload;
  AppendBigEndian(payload, error_code, 4);
  return H2Frame(NGHTTP2_RST_STREAM, NGHTTP2_FLAG_NONE, stream_id, payload);
}

std::string H2WindowUpdate(uint32_t stream_id, uint32_t increment) {
  std::string payload;
  AppendBigEndian(payload, increment, 4);
  return H2Frame(NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE, stream_id, payload);
}

std::string H2Data(uint32_t stream_id, std::string_view data, bool end_stream) {
  return H2Frame(NGHTTP2_DATA, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, stream_id,
                 data);
}

std::string H2Headers(uint32_t stream_id, std::string_view header_block, bool end_stream,
                      bool end_headers) {
  const uint8_t flags =
      (end_stream ? NGHTTP2_FLAG_END_STREAM : 0) | (end_headers ? NGHTTP2_FLAG_END_HEADERS : 0);
  return H2Frame(NGHTTP2_HEADERS, flags, stream_id, header_block);
}

std::string H2Continuation(uint32_t stream_id, std::string_view header_block, bool end_headers) {
  return H2Frame(NGHTTP2_CONTINUATION, end_headers ? NGHTTP2_FLAG_END_HEADERS : NGHTTP2_FLAG_NONE,
                 stream_id, header_block);
}

std::string H2GoawayFrame(uint32_t last_stream_id, uint32_t error_code, std::string_view debug) {
  std::string payload;
  AppendBigEndian(payload, last_stream_id, 4);
  AppendBigEndian(payload, error_code, 4);
  payload += debug;
  return H2Frame(NGHTTP2_GOAWAY, NGHTTP2_FLAG_NONE, 0, payload);
}

std::string H2HeaderBlock(const H2Fields& fields) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    // nghttp2 only reads through these pointers.
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                   value.size(), NGHTTP2_NV_FLAG_NO_INDEX});
  }
  // A fresh deflater has an empty dynamic table and, with no-index fields, leaves it empty: the
  // block refers to the static table only.
  nghttp2_hd_deflater* deflater = nullptr;
  if (nghttp2_hd_deflate_new(&deflater, NGHTTP2_DEFAULT_HEADER_TABLE_SIZE) != 0) {
    throw std::runtime_error("nghttp2_hd_deflate_new failed");
  }
  std::string block(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
  const ssize_t size = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(block.data()),
                                             block.size(), nva.data(), nva.size());
  nghttp2_hd_deflate_del(deflater);
  if (size < 0) {
    throw std::runtime_error(std::string("HPACK encoding failed: ") +
                             nghttp2_strerror(static_cast<int>(size)));
  }
  block.resize(static_cast<size_t>(size));
  return block;
}

std::string H2RequestHeaderBlock(std::string_view method, std::string_view path,
                                 std::string_view authority, const H2Fields& extra,
                                 std::string_view scheme) {
  H2Fields fields = {{":method", std::string(method)},
                     {":scheme", std::string(scheme)},
                     {":authority", std::string(authority)},
                     {":path", std::string(path)}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  return H2HeaderBlock(fields);
}

std::vector<H2ParsedFrame> ParseH2Frames(std::string_view bytes, size_t* consumed) {
  std::vector<H2ParsedFrame> frames;
  size_t at = 0;
  while (bytes.size() - at >= kFrameHeaderSize) {
    const size_t length = ReadBigEndian(bytes, at, 3);
    if (bytes.size() - at - kFrameHeaderSize < length) break;
    H2ParsedFrame frame;
    frame.type = static_cast<uint8_t>(bytes[at + 3]);
    frame.flags = static_cast<uint8_t>(bytes[at + 4]);
    frame.stream_id = static_cast<uint32_t>(ReadBigEndian(bytes, at + 5, 4)) & 0x7fffffffu;
    frame.payload = std::string(bytes.substr(at + kFrameHeaderSize, length));
    frames.push_back(std::move(frame));
    at += kFrameHeaderSize + length;
  }
  if (consumed != nullptr) *consumed = at;
  return frames;
}

uint32_t H2GoawayLastStream(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_GOAWAY, 8, "H2GoawayLastStream");
  return static_cast<uint32_t>(ReadBigEndian(frame.payload, 0, 4)) & 0x7fffffffu;
}

uint32_t H2GoawayErrorCode(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_GOAWAY, 8, "H2GoawayErrorCode");
  return static_cast<uint32_t>(ReadBigEndian(frame.payload, 4, 4));
}

std::string H2GoawayDebug(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_GOAWAY, 8, "H2GoawayDebug");
  return frame.payload.substr(8);
}

uint32_t H2RstStreamCode(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_RST_STREAM, 4, "H2RstStreamCode");
  return static_cast<uint32_t>(ReadBigEndian(frame.payload, 0, 4));
}

uint32_t H2WindowUpdateIncrement(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_WINDOW_UPDATE, 4, "H2WindowUpdateIncrement");
  return static_cast<uint32_t>(ReadBigEndian(frame.payload, 0, 4)) & 0x7fffffffu;
}

uint64_t H2PingOpaque(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_PING, 8, "H2PingOpaque");
  return ReadBigEndian(frame.payload, 0, 8);
}

std::vector<std::pair<uint16_t, uint32_t>> H2SettingsEntries(const H2ParsedFrame& frame) {
  Require(frame, NGHTTP2_SETTINGS, 0, "H2SettingsEntries");
  std::vector<std::pair<uint16_t, uint32_t>> entries;
  for (size_t at = 0; at + 6 <= frame.payload.size(); at += 6) {
    entries.emplace_back(static_cast<uint16_t>(ReadBigEndian(frame.payload, at, 2)),
                         static_cast<uint32_t>(ReadBigEndian(frame.payload, at + 2, 4)));
  }
  return entries;
}

std::vector<H2ReceivedHeaderBlock> H2HeaderBlocks(const std::vector<H2ParsedFrame>& frames) {
  std::vector<H2ReceivedHeaderBlock> blocks;
  std::optional<H2ReceivedHeaderBlock> open;  // A HEADERS frame still waiting for END_HEADERS.
  for (const H2ParsedFrame& frame : frames) {
    std::string_view fragment = frame.payload;
    if (frame.type == NGHTTP2_HEADERS) {
      if ((frame.flags & NGHTTP2_FLAG_PADDED) != 0 && !fragment.empty()) {
        const size_t padding = static_cast<uint8_t>(fragment[0]);
        fragment.remove_prefix(1);
        fragment.remove_suffix(std::min(padding, fragment.size()));
      }
      if ((frame.flags & NGHTTP2_FLAG_PRIORITY) != 0) {
        fragment.remove_prefix(std::min<size_t>(5, fragment.size()));
      }
      open =
          H2ReceivedHeaderBlock{frame.stream_id, (frame.flags & NGHTTP2_FLAG_END_STREAM) != 0, ""};
    } else if (frame.type != NGHTTP2_CONTINUATION || !open) {
      continue;
    }
    open->block += fragment;
    if ((frame.flags & NGHTTP2_FLAG_END_HEADERS) != 0) {
      blocks.push_back(std::move(*open));
      open.reset();
    }
  }
  return blocks;
}

H2HeaderDecoder::H2HeaderDecoder() {
  if (nghttp2_hd_inflate_new(&inflater_) != 0) {
    throw std::runtime_error("nghttp2_hd_inflate_new failed");
  }
}

H2HeaderDecoder::~H2HeaderDecoder() { nghttp2_hd_inflate_del(inflater_); }

std::optional<H2Fields> H2HeaderDecoder::Decode(std::string_view block) {
  H2Fields fields;
  const auto* in = reinterpret_cast<const uint8_t*>(block.data());
  size_t left = block.size();
  for (;;) {
    nghttp2_nv field;
    int flags = 0;
    const ssize_t read =
        nghttp2_hd_inflate_hd2(inflater_, &field, &flags, in, left, /*in_final=*/1);
    if (read < 0) return std::nullopt;
    in += read;
    left -= static_cast<size_t>(read);
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
      fields.emplace_back(AsView(field.name, field.namelen), AsView(field.value, field.valuelen));
    }
    if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) break;
    // Everything read and no field emitted, yet not final: the block ended inside a field.
    if (left == 0 && (flags & NGHTTP2_HD_INFLATE_EMIT) == 0) return std::nullopt;
  }
  nghttp2_hd_inflate_end_headers(inflater_);
  return fields;
}

std::string H2FieldValue(const H2Fields& fields, std::string_view name) {
  for (const auto& [field_name, value] : fields) {
    if (field_name == name) return value;
  }
  return "";
}

}  // namespace apim::testing
