// The access line is formatted by hand, not by a JSON library: these check it is always one
// valid JSON object whatever the strings hold, by reading it back with one.
#include "dataplane/admin/access_log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace apim::dataplane {
namespace {

using nlohmann::json;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796159325720));

json Line(const AccessRecord& record) {
  std::string line;
  AppendAccessLine(record, kNow, line);
  EXPECT_TRUE(line.ends_with("}\n")) << line;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  return json::parse(line);  // Throws, failing the test, if it is not JSON.
}

TEST(AccessLogTest, WritesTheRecordsFields) {
  AccessRecord record;
  record.api = "orders";
  record.method = "GET";
  record.target = "/orders/7?x=1";
  record.client_ip = "127.0.0.1";
  record.status = 200;
  record.request_bytes = 12;
  record.response_bytes = 345;
  record.duration = std::chrono::microseconds(1694);
  record.time_to_first_byte = std::chrono::microseconds(482);
  const json line = Line(record);
  EXPECT_EQ(line["time"], 1796159325720);
  EXPECT_EQ(line["api"], "orders");
  EXPECT_EQ(line["method"], "GET");
  EXPECT_EQ(line["target"], "/orders/7?x=1");
  EXPECT_EQ(line["client_ip"], "127.0.0.1");
  EXPECT_EQ(line["status"], 200);
  EXPECT_EQ(line["request_bytes"], 12);
  EXPECT_EQ(line["response_bytes"], 345);
  EXPECT_DOUBLE_EQ(line["duration_ms"].get<double>(), 1.694);
  EXPECT_DOUBLE_EQ(line["ttfb_ms"].get<double>(), 0.482);
  EXPECT_FALSE(line.contains("stream"));
  EXPECT_FALSE(line.contains("error"));
  EXPECT_FALSE(line.contains("headers"));
  EXPECT_FALSE(line.contains("request_body"));
}

TEST(AccessLogTest, WritesStreamsErrorsHeadersAndBodiesOnlyWhenThereAreAny) {
  AccessRecord record;
  record.stream = true;
  record.events = 42;
  record.error = "client went away";
  record.log_client_ip = false;
  record.client_ip = "10.1.2.3";
  record.headers = {{"x-request-id", "abc"}, {"user-agent", "curl/8"}};
  json line = Line(record);
  EXPECT_EQ(line["stream"], true);
  EXPECT_EQ(line["events"], 42);
  EXPECT_EQ(line["error"], "client went away");
  EXPECT_FALSE(line.contains("client_ip")) << "the diagnostic setting leaves it out";
  EXPECT_EQ(line["headers"], (json{{"x-request-id", "abc"}, {"user-agent", "curl/8"}}));
  EXPECT_FALSE(line.contains("request_body")) << "never the bodies of a stream";

  record.stream = false;
  record.capture_bodies = true;
  record.request_body = "{\"a\":1}";
  record.response_body = "ok";
  line = Line(record);
  EXPECT_EQ(line["request_body"], "{\"a\":1}");
  EXPECT_EQ(line["response_body"], "ok");
}

TEST(AccessLogTest, EscapesControlBytesQuotesAndBackslashes) {
  AccessRecord record;
  record.target = std::string("/a\"b\\c\nd\re\tf\x01g\x1f\x7fh\0i", 19);
  record.headers = {{"x-evil\n", "v\"}\n{\"forged\":1"}};
  std::string text;
  AppendAccessLine(record, kNow, text);
  EXPECT_EQ(text.find_first_of(std::string("\r\t\x01\x1f\x7f\0", 6)), std::string::npos)
      << "no raw control byte reaches the log: " << text;
  EXPECT_NE(text.find(R"(\u0001g\u001f\u007fh\u0000i)"), std::string::npos) << text;
  const json line = Line(record);
  EXPECT_EQ(line["target"], record.target) << "escaped, not dropped";
  EXPECT_EQ(line["headers"]["x-evil\n"], "v\"}\n{\"forged\":1");
  EXPECT_FALSE(line.contains("forged"));
}

TEST(AccessLogTest, ReplacesBytesThatAreNotUtf8AndKeepsThoseThatAre) {
  AccessRecord record;
  record.api = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";  // é, €, 😀: valid, kept.
  record.target = "/x\xFFy\xC3(z\xED\xA0\x80w\xC0\xAFv\xF4\x90\x80\x80u\xE2\x82";
  const json line = Line(record);
  EXPECT_EQ(line["api"], record.api);
  // A lone 0xFF, a lead byte without its continuation, a surrogate (3 bytes), an overlong '/'
  // (2 bytes), past U+10FFFF (4 bytes), a sequence cut by the end (2 bytes): each byte is U+FFFD.
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(line["target"], "/x" + r + "y" + r + "(z" + r + r + r + "w" + r + r + "v" + r + r + r +
                                r + "u" + r + r);
}

}  // namespace
}  // namespace apim::dataplane
