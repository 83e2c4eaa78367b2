// The raw HTTP/2 frames of tests/support: what the builders write is what the parser reads back,
// byte for byte as RFC 9113 lays frames out, and what a real nghttp2 session accepts and answers.
#include "tests/support/h2_frames.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace apim::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(H2FramesTest, ThePrefaceIsTheTwentyFourByteMagic) {
  EXPECT_EQ(H2ClientPreface(), std::string_view("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  EXPECT_EQ(H2ClientPreface().size(), 24u);
}

TEST(H2FramesTest, AFrameIsLengthTypeFlagsStreamThenPayload) {
  EXPECT_EQ(H2Frame(0x0a, 0x05, 0x80000003, "abc"),
            std::string("\x00\x00\x03\x0a\x05\x80\x00\x00\x03"
                        "abc",
                        12));
  EXPECT_EQ(H2Ping(0x0102030405060708, /*ack=*/true),
            std::string("\x00\x00\x08\x06\x01\x00\x00\x00\x00"
                        "\x01\x02\x03\x04\x05\x06\x07\x08",
                        17));
}

TEST(H2FramesTest, EveryBuilderParsesBackToWhatItWasGiven) {
  const std::string bytes = H2Settings({{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}}) +
                            H2SettingsAck() + H2Ping(42) + H2RstStream(5, NGHTTP2_CANCEL) +
                            H2WindowUpdate(0, 1000) + H2Data(3, "hello", /*end_stream=*/true) +
                            H2Headers(7, "block", /*end_stream=*/false, /*end_headers=*/false) +
                            H2Continuation(7, "more", /*end_headers=*/true) +
                            H2GoawayFrame(9, NGHTTP2_ENHANCE_YOUR_CALM, "too many resets");

  size_t consumed = 0;
  const std::vector<H2ParsedFrame> frames = ParseH2Frames(bytes, &consumed);
  EXPECT_EQ(consumed, bytes.size());
  ASSERT_EQ(frames.size(), 9u);

  EXPECT_EQ(frames[0].type, NGHTTP2_SETTINGS);
  EXPECT_EQ(frames[0].flags, NGHTTP2_FLAG_NONE);
  EXPECT_THAT(H2SettingsEntries(frames[0]),
              ElementsAre(Pair(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100u),
                          Pair(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20)));
  EXPECT_EQ(frames[1].type, NGHTTP2_SETTINGS);
  EXPECT_EQ(frames[1].flags, NGHTTP2_FLAG_ACK);
  EXPECT_TRUE(frames[1].payload.empty());
  EXPECT_EQ(frames[2].type, NGHTTP2_PING);
  EXPECT_EQ(frames[2].flags, NGHTTP2_FLAG_NONE);
  EXPECT_EQ(H2PingOpaque(frames[2]), 42u);
  EXPECT_EQ(frames[3].stream_id, 5u);
  EXPECT_EQ(H2RstStreamCode(frames[3]), NGHTTP2_CANCEL);
  EXPECT_EQ(frames[4].stream_id, 0u);
  EXPECT_EQ(H2WindowUpdateIncrement(frames[4]), 1000u);
  EXPECT_EQ(frames[5].type, NGHTTP2_DATA);
  EXPECT_EQ(frames[5].flags, NGHTTP2_FLAG_END_STREAM);
  EXPECT_EQ(frames[5].stream_id, 3u);
  EXPECT_EQ(frames[5].payload, "hello");
  EXPECT_EQ(frames[6].type, NGHTTP2_HEADERS);
  EXPECT_EQ(frames[6].flags, NGHTTP2_FLAG_NONE);
  EXPECT_EQ(frames[7].type, NGHTTP2_CONTINUATION);
  EXPECT_EQ(frames[7].flags, NGHTTP2_FLAG_END_HEADERS);
  EXPECT_EQ(H2GoawayLastStream(frames[8]), 9u);
  EXPECT_EQ(H2GoawayErrorCode(frames[8]), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_EQ(H2GoawayDebug(frames[8]), "too many resets");
}

TEST(H2FramesTest, TheParserClearsTheReservedBitOfTheStreamId) {
  const auto frames = ParseH2Frames(H2Frame(NGHTTP2_DATA, 0, 0x80000001, "x"));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].stream_id, 1u);
}

TEST(H2FramesTest, TheParserStopsBeforeAnIncompleteFrame) {
  const std::string whole = H2Ping(1);
  const std::string data = H2Data(1, std::string(100, 'x'), false);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{8}, size_t{9}, data.size() - 1}) {
    size_t consumed = 99;
    const auto frames = ParseH2Frames(whole + data.substr(0, cut), &consumed);
    ASSERT_EQ(frames.size(), 1u) << "cut at " << cut;
    EXPECT_EQ(frames[0].type, NGHTTP2_PING);
    EXPECT_EQ(consumed, whole.size()) << "cut at " << cut;
  }
  size_t consumed = 99;
  EXPECT_TRUE(ParseH2Frames("", &consumed).empty());
  EXPECT_EQ(consumed, 0u);
}

TEST(H2FramesTest, AnAccessorRefusesAFrameOfAnotherType) {
  const auto frames = ParseH2Frames(H2Ping(1) + H2Frame(NGHTTP2_GOAWAY, 0, 0, "short"));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_THROW(H2GoawayErrorCode(frames[0]), std::invalid_argument);
  EXPECT_THROW(H2GoawayErrorCode(frames[1]), std::invalid_argument);
  EXPECT_THROW(H2RstStreamCode(frames[0]), std::invalid_argument);
}

TEST(H2FramesTest, ARequestBlockDecodesToItsFieldsInOrder) {
  const std::string block = H2RequestHeaderBlock("GET", "/events?x=1", "gw.test:8443",
                                                 {{"accept", "text/event-stream"}}, "https");
  H2HeaderDecoder decoder;
  EXPECT_THAT(
      decoder.Decode(block),
      ::testing::Optional(ElementsAre(
          Pair(":method", "GET"), Pair(":scheme", "https"), Pair(":authority", "gw.test:8443"),
          Pair(":path", "/events?x=1"), Pair("accept", "text/event-stream"))));
}

TEST(H2FramesTest, ARequestBlockLeavesTheDecodersDynamicTableEmpty) {
  const std::string block = H2RequestHeaderBlock("POST", "/a", "localhost", {{"x-big", "value"}});
  nghttp2_hd_inflater* inflater = nullptr;
  ASSERT_EQ(nghttp2_hd_inflate_new(&inflater), 0);
  for (int round = 0; round < 2; ++round) {
    const auto* in = reinterpret_cast<const uint8_t*>(block.data());
    size_t left = block.size();
    int fields = 0;
    for (;;) {
      nghttp2_nv field;
      int flags = 0;
      const ssize_t read = nghttp2_hd_inflate_hd2(inflater, &field, &flags, in, left, 1);
      ASSERT_GE(read, 0);
      in += read;
      left -= static_cast<size_t>(read);
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
        ++fields;
        EXPECT_NE(field.flags & NGHTTP2_NV_FLAG_NO_INDEX, 0) << "field " << fields;
      }
      if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) break;
    }
    nghttp2_hd_inflate_end_headers(inflater);
    EXPECT_EQ(fields, 5);
    EXPECT_EQ(nghttp2_hd_inflate_get_dynamic_table_size(inflater), 0u);
  }
  nghttp2_hd_inflate_del(inflater);
}

TEST(H2FramesTest, TheDecoderCarriesTheDynamicTableFromBlockToBlock) {
  // Indexed fields, as a server's encoder writes them: the second block refers to the first's.
  nghttp2_hd_deflater* deflater = nullptr;
  ASSERT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
  std::string name = "x-request-id", value = "abc123";
  nghttp2_nv field{reinterpret_cast<uint8_t*>(name.data()),
                   reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE};
  std::string blocks[2];
  for (std::string& block : blocks) {
    block.resize(nghttp2_hd_deflate_bound(deflater, &field, 1));
    const ssize_t size = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(block.data()),
                                               block.size(), &field, 1);
    ASSERT_GT(size, 0);
    block.resize(static_cast<size_t>(size));
  }
  nghttp2_hd_deflate_del(deflater);
  ASSERT_EQ(blocks[1].size(), 1u);  // One byte: an index into the dynamic table.

  H2HeaderDecoder decoder;
  EXPECT_THAT(decoder.Decode(blocks[0]), ::testing::Optional(ElementsAre(Pair(name, value))));
  EXPECT_THAT(decoder.Decode(blocks[1]), ::testing::Optional(ElementsAre(Pair(name, value))));
  H2HeaderDecoder fresh;
  EXPECT_EQ(fresh.Decode(blocks[1]), std::nullopt);
}

TEST(H2FramesTest, TheDecoderRefusesABlockCutInsideAField) {
  const std::string block = H2HeaderBlock({{"x-long", std::string(100, 'v')}});
  H2HeaderDecoder decoder;
  EXPECT_EQ(decoder.Decode(block.substr(0, block.size() - 10)), std::nullopt);
}

TEST(H2FramesTest, HeaderBlocksJoinContinuationsAndDropPaddingAndPriority) {
  const std::string block = H2RequestHeaderBlock("GET", "/", "localhost");
  // PADDED (pad length 3) and PRIORITY (5 bytes) around the first half; the rest in CONTINUATION.
  const size_t half = block.size() / 2;
  const std::string first = std::string("\x03", 1) + std::string("\x00\x00\x00\x01\x10", 5) +
                            block.substr(0, half) + std::string(3, '\0');
  const std::string bytes =
      H2Frame(NGHTTP2_HEADERS,
              NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY | NGHTTP2_FLAG_END_STREAM, 1, first) +
      H2Data(1, "ignored", false) + H2Continuation(1, block.substr(half), true) +
      H2Headers(3, "incomplete", false, /*end_headers=*/false);

  const auto blocks = H2HeaderBlocks(ParseH2Frames(bytes));
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].stream_id, 1u);
  EXPECT_TRUE(blocks[0].end_stream);
  EXPECT_EQ(blocks[0].block, block);
}

// The frames a test writes reach a real nghttp2 server as a request, and its answer reads back.
TEST(H2FramesTest, ANghttp2ServerTakesTheRequestAndItsAnswerDecodes) {
  struct Seen {
    H2Fields fields;
    int32_t request_stream = 0;
  } seen;
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(
      callbacks, [](nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t namelen,
                    const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
        static_cast<Seen*>(user_data)->fields.emplace_back(
            std::string(reinterpret_cast<const char*>(name), namelen),
            std::string(reinterpret_cast<const char*>(value), valuelen));
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      callbacks, [](nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
        if (frame->hd.type == NGHTTP2_HEADERS) {
          static_cast<Seen*>(user_data)->request_stream = frame->hd.stream_id;
        }
        return 0;
      });
  nghttp2_session* server = nullptr;
  ASSERT_EQ(nghttp2_session_server_new(&server, callbacks, &seen), 0);
  nghttp2_session_callbacks_del(callbacks);

  const std::string request =
      std::string(H2ClientPreface()) + H2Settings({}) +
      H2Headers(1, H2RequestHeaderBlock("GET", "/x", "localhost", {{"accept", "*/*"}}), true);
  const ssize_t fed = nghttp2_session_mem_recv(
      server, reinterpret_cast<const uint8_t*>(request.data()), request.size());
  EXPECT_EQ(fed, static_cast<ssize_t>(request.size()));
  EXPECT_EQ(seen.request_stream, 1);
  EXPECT_THAT(seen.fields, ElementsAre(Pair(":method", "GET"), Pair(":scheme", "http"),
                                       Pair(":authority", "localhost"), Pair(":path", "/x"),
                                       Pair("accept", "*/*")));

  std::string status = ":status", ok = "204";
  nghttp2_nv answer{reinterpret_cast<uint8_t*>(status.data()),
                    reinterpret_cast<uint8_t*>(ok.data()), status.size(), ok.size(),
                    NGHTTP2_NV_FLAG_NONE};
  ASSERT_EQ(nghttp2_submit_response(server, 1, &answer, 1, nullptr), 0);
  std::string written;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t size = nghttp2_session_mem_send(server, &data);
    ASSERT_GE(size, 0);
    if (size == 0) break;
    written.append(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
  }
  nghttp2_session_del(server);

  size_t consumed = 0;
  const auto frames = ParseH2Frames(written, &consumed);
  EXPECT_EQ(consumed, written.size());
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].type, NGHTTP2_SETTINGS);  // A server's first frame.
  const auto blocks = H2HeaderBlocks(frames);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].stream_id, 1u);
  EXPECT_TRUE(blocks[0].end_stream);
  H2HeaderDecoder decoder;
  const auto fields = decoder.Decode(blocks[0].block);
  ASSERT_TRUE(fields.has_value());
  EXPECT_EQ(H2FieldValue(*fields, ":status"), "204");
  EXPECT_EQ(H2FieldValue(*fields, "absent"), "");
}

}  // namespace
}  // namespace apim::testing
