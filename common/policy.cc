#include "common/policy.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <pugixml.hpp>
#include <set>

#include "absl/status/status.h"
#include "common/str_cat.h"

namespace apim::policy {
namespace {

// Returns early from the enclosing function with the status of a failed expression.
#define APIM_RETURN_IF_ERROR(expr)                     \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (0)

// Whitespace-only text is kept when it is an element's only content: <set-body> </set-body> is " ".
constexpr unsigned kParseOptions = pugi::parse_default | pugi::parse_ws_pcdata_single;

constexpr uint64_t kMaxRenewalPeriodSeconds = 300;              // as APIM
constexpr uint64_t kMaxValidateContentBytes = 4 * 1024 * 1024;  // as APIM
constexpr uint64_t kMaxCacheDurationSeconds = 365 * 24 * 3600;
constexpr uint64_t kMaxTimeoutSeconds = 3600;

constexpr std::string_view kSupportedCounterKeys =
    "@(context.Request.IpAddress), "
    "@(context.Request.Headers.GetValueOrDefault(\"NAME\",\"\")), "
    "@(context.Request.Url.Query.GetValueOrDefault(\"NAME\",\"\"))";

enum SectionBit : unsigned { kInbound = 1, kBackend = 2, kOutbound = 4, kOnError = 8 };
constexpr unsigned kAnySection = kInbound | kBackend | kOutbound | kOnError;
constexpr std::array<std::string_view, 4> kSectionNames = {"inbound", "backend", "outbound",
                                                           "on-error"};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// RFC 9110 token, the grammar of a header name.
bool IsToken(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// A header value that could split the header block (response splitting) is refused, and, since
// it became a rule, any other control character but tab (RFC 9110 field-content): a VT or DEL
// reaches clients and backends that may read it differently.
bool IsSafeHeaderValue(std::string_view text, Rules rules) {
  if (rules == Rules::kServe) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
  }
  return std::none_of(text.begin(), text.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && byte != '\t') || byte == 0x7f;
  });
}
constexpr std::string_view kUnsafeHeaderValue =
    "must not contain line breaks, NUL or other control characters (tab is allowed)";

// Statuses a response the gateway makes up can carry: a final status, and no body where HTTP
// allows none. Rules::kServe leaves this out; the worker answers such a policy with a 500.
std::optional<std::string> StatusProblem(uint64_t code, bool with_body) {
  if (code < 200) return StrCat(code, " is not a final status; use 200-599");
  if (with_body && (code == 204 || code == 304)) {
    return StrCat(code, " responses carry no body, and this one has one");
  }
  return std::nullopt;
}

bool IsText(pugi::xml_node node) {
  return node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata;
}

bool Contains(std::initializer_list<std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// "<a>, <b>" for messages.
template <typename Range>
std::string Tags(const Range& names) {
  std::vector<std::string> tags;
  for (std::string_view name : names) tags.push_back(StrCat("<", name, ">"));
  return StrJoin(tags, ", ");
}

// Where errors point: the document's text, to turn pugixml offsets into line numbers.
class Source {
 public:
  Source(std::string_view xml, Rules rules) : xml_(xml), rules_(rules) {}

  Rules rules() const { return rules_; }

  size_t LineAt(ptrdiff_t offset) const {
    size_t end = std::min(static_cast<size_t>(std::max<ptrdiff_t>(offset, 0)), xml_.size());
    // Lines end with LF, CRLF or a lone CR.
    size_t line = 1;
    for (size_t i = 0; i < end; ++i) {
      if (xml_[i] == '\n' || (xml_[i] == '\r' && (i + 1 >= xml_.size() || xml_[i + 1] != '\n'))) {
        ++line;
      }
    }
    return line;
  }

  absl::Status Error(size_t line, std::string_view element, std::string_view problem) const {
    return absl::InvalidArgumentError(
        StrCat("policy.xml: line ", line, ": ", element, ": ", problem));
  }
  absl::Status Error(pugi::xml_node node, std::string_view problem) const {
    return Error(LineAt(node.offset_debug()), node.name(), problem);
  }
  // An attribute's value, quoted as the user wrote it, followed by what is wrong with it.
  absl::Status Error(pugi::xml_node node, pugi::xml_attribute attribute,
                     std::string_view problem) const {
    return Error(node, StrCat(attribute.name(), "=\"", attribute.value(), "\" ", problem));
  }

 private:
  std::string_view xml_;
  Rules rules_;
};

absl::Status CheckNoText(const Source& source, pugi::xml_node node) {
  std::string_view text = IsText(node) ? node.value() : "";
  if (std::string_view trimmed = Trim(text); !trimmed.empty()) {
    // Point at the text itself, past its leading line breaks — but decoded text ("&#10;") can
    // hold breaks the source does not, so never past the source's last line.
    std::string_view leading = text.substr(0, static_cast<size_t>(trimmed.data() - text.data()));
    const size_t line =
        std::min(source.LineAt(node.offset_debug()) +
                     static_cast<size_t>(std::count(leading.begin(), leading.end(), '\n')),
                 source.LineAt(std::numeric_limits<ptrdiff_t>::max()));
    return source.Error(line, node.parent().name(),
                        StrCat("unexpected text \"", trimmed.substr(0, 40), "\""));
  }
  return absl::OkStatus();
}

// Attributes must be among `attributes`, each at most once.
absl::Status CheckAttributes(const Source& source, pugi::xml_node node,
                             std::initializer_list<std::string_view> attributes) {
  std::set<std::string_view> seen;
  for (pugi::xml_attribute attribute : node.attributes()) {
    std::string_view name = attribute.name();
    if (!Contains(attributes, name)) {
      return source.Error(
          node,
          attributes.size() == 0
              ? StrCat("unsupported attribute ", name, "; <", node.name(), "> takes none")
              : StrCat("unsupported attribute ", name, "; supported: ", StrJoin(attributes, ", ")));
    }
    if (!seen.insert(name).second) return source.Error(node, StrCat(name, " appears twice"));
  }
  return absl::OkStatus();
}

// The attributes of a policy element, and its children: elements among `children`, no text.
absl::Status CheckShape(const Source& source, pugi::xml_node node,
                        std::initializer_list<std::string_view> attributes,
                        std::initializer_list<std::string_view> children) {
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, attributes));
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && !Contains(children, child.name())) {
      return source.Error(child, children.size() == 0 ? StrCat("unexpected inside <", node.name(),
                                                               ">, which takes no child elements")
                                                      : StrCat("unexpected inside <", node.name(),
                                                               ">; expected ", Tags(children)));
    }
    APIM_RETURN_IF_ERROR(CheckNoText(source, child));
  }
  return absl::OkStatus();
}

// The text of an element that holds only text (CDATA included), exactly as written.
absl::Status ReadText(const Source& source, pugi::xml_node node, std::string& out) {
  out.clear();
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element) {
      return source.Error(child, StrCat("unexpected inside <", node.name(), ">, which holds text"));
    }
    if (IsText(child)) out.append(child.value());
  }
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, {}));
  // A literal that looks like a policy expression would be sent as is; say so instead.
  std::string_view trimmed = Trim(out);
  if (trimmed.starts_with("@(") || trimmed.starts_with("@{")) {
    return source.Error(node, "policy expressions are not supported here");
  }
  return absl::OkStatus();
}

absl::Status ReadNumber(const Source& source, pugi::xml_node node, const char* name, uint64_t min,
                        uint64_t max, std::string_view unit, std::optional<uint64_t>& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  std::string_view text = attribute.value();
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool whole = !text.empty() && end == text.data() + text.size();
  if (error == std::errc::result_out_of_range ||
      (whole && error == std::errc() && (value < min || value > max))) {
    return source.Error(
        node, attribute,
        StrCat("must be between ", min, " and ", max, unit.empty() ? "" : " ", unit));
  }
  if (!whole || error != std::errc()) {
    return source.Error(node, attribute, "must be a whole number");
  }
  out = value;
  return absl::OkStatus();
}

absl::Status ReadRequiredNumber(const Source& source, pugi::xml_node node, const char* name,
                                uint64_t min, uint64_t max, std::string_view unit, uint64_t& out) {
  std::optional<uint64_t> value;
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, name, min, max, unit, value));
  if (!value) return source.Error(node, StrCat(name, " is required"));
  out = *value;
  return absl::OkStatus();
}

absl::Status ReadBool(const Source& source, pugi::xml_node node, const char* name,
                      std::optional<bool>& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  std::string_view text = attribute.value();
  if (text != "true" && text != "false") {
    return source.Error(node, attribute, "must be \"true\" or \"false\"");
  }
  out = text == "true";
  return absl::OkStatus();
}

// An attribute whose value is one of `choices`; `out` keeps its default when it is absent.
absl::Status ReadChoice(const Source& source, pugi::xml_node node, const char* name,
                        std::initializer_list<std::string_view> choices, std::string& out) {
  pugi::xml_attribute attribute = node.attribute(name);
  if (!attribute) return absl::OkStatus();
  if (!Contains(choices, attribute.value())) {
    return source.Error(node, attribute, StrCat("must be one of: ", StrJoin(choices, ", ")));
  }
  out = attribute.value();
  return absl::OkStatus();
}

absl::Status ReadHeaderName(const Source& source, pugi::xml_node node, std::string& out) {
  pugi::xml_attribute attribute = node.attribute("name");
  if (!attribute) return source.Error(node, "name is required");
  if (!IsToken(attribute.value())) {
    return source.Error(node, attribute, "is not a valid header name");
  }
  out = attribute.value();
  return absl::OkStatus();
}

absl::Status ReadRenewalPeriod(const Source& source, pugi::xml_node node,
                               std::chrono::seconds& out) {
  uint64_t seconds = 0;
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "renewal-period", 1,
                                          kMaxRenewalPeriodSeconds, "seconds", seconds));
  out = std::chrono::seconds(seconds);
  return absl::OkStatus();
}

absl::Status ReadCalls(const Source& source, pugi::xml_node node, uint32_t& out) {
  uint64_t calls = 0;
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "calls", 1,
                                          std::numeric_limits<uint32_t>::max(), "", calls));
  out = static_cast<uint32_t>(calls);
  return absl::OkStatus();
}

// Tokens of the small C# subset counter-key expressions are written in.
struct Token {
  enum class Kind { kName, kString, kPunctuation } kind;
  std::string text;
  bool operator==(const Token&) const = default;
};

std::optional<std::vector<Token>> Tokenize(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  auto is_name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  while (i < text.size()) {
    char c = text[i];
    if (IsSpace(c)) {
      ++i;
    } else if (is_name_char(c)) {
      size_t start = i;
      while (i < text.size() && is_name_char(text[i])) ++i;
      tokens.push_back({Token::Kind::kName, std::string(text.substr(start, i - start))});
    } else if (c == '"') {
      std::string value;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') {
          if (++i == text.size() || (text[i] != '"' && text[i] != '\\')) return std::nullopt;
        }
        value.push_back(text[i]);
      }
      if (i++ == text.size()) return std::nullopt;  // unterminated
      tokens.push_back({Token::Kind::kString, std::move(value)});
    } else {
      tokens.push_back({Token::Kind::kPunctuation, std::string(1, c)});
      ++i;
    }
  }
  return tokens;
}

// Walks tokens against patterns; a failed match consumes nothing.
class TokenCursor {
 public:
  explicit TokenCursor(const std::vector<Token>& tokens) : tokens_(tokens) {}

  bool Consume(std::string_view pattern) {
    std::vector<Token> expected = *Tokenize(pattern);
    if (tokens_.size() - next_ < expected.size() ||
        !std::equal(expected.begin(), expected.end(), tokens_.begin() + next_)) {
      return false;
    }
    next_ += expected.size();
    return true;
  }
  bool String(std::string& out) {
    if (next_ == tokens_.size() || tokens_[next_].kind != Token::Kind::kString) return false;
    out = tokens_[next_++].text;
    return true;
  }
  bool AtEnd() const { return next_ == tokens_.size(); }

 private:
  const std::vector<Token>& tokens_;
  size_t next_ = 0;
};

// The expression inside @( ), if it is one the gateway evaluates itself.
std::optional<CounterKey> RecognizeCounterExpression(std::string_view expression) {
  std::optional<std::vector<Token>> tokens = Tokenize(expression);
  if (!tokens) return std::nullopt;
  if (TokenCursor ip(*tokens); ip.Consume("context.Request.IpAddress") && ip.AtEnd()) {
    return CounterKey{CounterKey::Kind::kClientIp, ""};
  }
  // GetValueOrDefault("name") or GetValueOrDefault("name", "default").
  auto lookup = [&](std::string_view prefix, CounterKey::Kind kind) -> std::optional<CounterKey> {
    TokenCursor call(*tokens);
    std::string name, fallback;
    if (call.Consume(prefix) && call.Consume(".GetValueOrDefault(") && call.String(name) &&
        (call.Consume(")") || (call.Consume(",") && call.String(fallback) && call.Consume(")"))) &&
        call.AtEnd()) {
      return CounterKey{kind, name};
    }
    return std::nullopt;
  };
  if (auto header = lookup("context.Request.Headers", CounterKey::Kind::kHeader)) return header;
  return lookup("context.Request.Url.Query", CounterKey::Kind::kQueryParameter);
}

absl::Status ReadCounterKey(const Source& source, pugi::xml_node node, CounterKey& out) {
  pugi::xml_attribute attribute = node.attribute("counter-key");
  if (!attribute || Trim(attribute.value()).empty()) {
    return source.Error(node, "counter-key is required");
  }
  std::string_view text = Trim(attribute.value());
  // "@{" is a multi-statement expression in APIM; taking it as a literal would count wrongly.
  if (text.find("@(") == std::string_view::npos && !text.starts_with("@{")) {
    out = CounterKey{CounterKey::Kind::kLiteral, attribute.value()};
    return absl::OkStatus();
  }
  std::optional<CounterKey> key;
  if (text.starts_with("@(") && text.ends_with(")")) {
    key = RecognizeCounterExpression(text.substr(2, text.size() - 3));
  }
  if (!key) {
    return source.Error(
        node, attribute,
        StrCat("is not supported; only these expressions are supported: ", kSupportedCounterKeys));
  }
  if (key->kind == CounterKey::Kind::kHeader && !IsToken(key->value)) {
    return source.Error(node, attribute, StrCat("names an invalid header \"", key->value, "\""));
  }
  if (key->kind == CounterKey::Kind::kQueryParameter && key->value.empty()) {
    return source.Error(node, attribute, "names an empty query parameter");
  }
  out = std::move(*key);
  return absl::OkStatus();
}

// One compiler per step type, by overload.

absl::Status Read(const Source& source, pugi::xml_node node, Base&) {
  return CheckShape(source, node, {}, {});
}

absl::Status Read(const Source& source, pugi::xml_node node, SetHeader& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"name", "exists-action"}, {"value"}));
  APIM_RETURN_IF_ERROR(ReadHeaderName(source, node, out.name));
  std::string action = "override";
  APIM_RETURN_IF_ERROR(
      ReadChoice(source, node, "exists-action", {"override", "skip", "append", "delete"}, action));
  out.exists_action = action == "skip"     ? ExistsAction::kSkip
                      : action == "append" ? ExistsAction::kAppend
                      : action == "delete" ? ExistsAction::kDelete
                                           : ExistsAction::kOverride;
  for (pugi::xml_node value : node.children("value")) {
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, value, text));
    if (!IsSafeHeaderValue(text, source.rules())) {
      return source.Error(value, StrCat("a header value ", kUnsafeHeaderValue));
    }
    out.values.emplace_back(Trim(text));
  }
  if (out.exists_action == ExistsAction::kDelete && !out.values.empty()) {
    return source.Error(node, "exists-action=\"delete\" takes no <value>");
  }
  if (out.exists_action != ExistsAction::kDelete && out.values.empty()) {
    return source.Error(node,
                        StrCat("needs at least one <value> with exists-action=\"", action, "\""));
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, CheckHeader& out) {
  APIM_RETURN_IF_ERROR(CheckShape(
      source, node, {"name", "failed-check-httpcode", "failed-check-error-message", "ignore-case"},
      {"value"}));
  APIM_RETURN_IF_ERROR(ReadHeaderName(source, node, out.name));
  std::optional<uint64_t> code;
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, "failed-check-httpcode", 100, 599, "", code));
  if (code) out.failed_check_httpcode = static_cast<unsigned>(*code);
  // The failed check's answer carries a problem body.
  if (std::optional<std::string> problem = StatusProblem(out.failed_check_httpcode, true);
      problem && source.rules() == Rules::kWrite) {
    return source.Error(node, node.attribute("failed-check-httpcode"), *problem);
  }
  out.failed_check_error_message = node.attribute("failed-check-error-message").value();
  std::optional<bool> ignore_case;
  APIM_RETURN_IF_ERROR(ReadBool(source, node, "ignore-case", ignore_case));
  out.ignore_case = ignore_case.value_or(true);
  for (pugi::xml_node value : node.children("value")) {
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, value, text));
    out.values.emplace_back(Trim(text));
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, RateLimit& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"calls", "renewal-period"}, {}));
  APIM_RETURN_IF_ERROR(ReadCalls(source, node, out.calls));
  return ReadRenewalPeriod(source, node, out.renewal_period);
}

absl::Status Read(const Source& source, pugi::xml_node node, RateLimitByKey& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"calls", "renewal-period", "counter-key"}, {}));
  APIM_RETURN_IF_ERROR(ReadCalls(source, node, out.calls));
  APIM_RETURN_IF_ERROR(ReadRenewalPeriod(source, node, out.renewal_period));
  return ReadCounterKey(source, node, out.key);
}

// Applies a <set-header> to a response being built, as the data plane would to a real one.
void ApplySetHeader(const SetHeader& set,
                    std::vector<std::pair<std::string, std::string>>& headers) {
  auto same_name = [&](const auto& header) {
    return std::equal(
        header.first.begin(), header.first.end(), set.name.begin(), set.name.end(),
        [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
  };
  bool exists = std::any_of(headers.begin(), headers.end(), same_name);
  if (set.exists_action == ExistsAction::kSkip && exists) return;
  if (set.exists_action == ExistsAction::kOverride || set.exists_action == ExistsAction::kDelete) {
    std::erase_if(headers, same_name);
  }
  for (const std::string& value : set.values) headers.emplace_back(set.name, value);
}

absl::Status Read(const Source& source, pugi::xml_node node, ReturnResponse& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {}, {"set-status", "set-header", "set-body"}));
  bool has_status = false, has_body = false;
  for (pugi::xml_node child : node.children()) {
    std::string_view name = child.name();
    if (name == "set-status") {
      if (std::exchange(has_status, true)) return source.Error(child, "appears twice");
      APIM_RETURN_IF_ERROR(CheckShape(source, child, {"code", "reason"}, {}));
      uint64_t code = 0;
      APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, child, "code", 100, 599, "", code));
      out.status = static_cast<unsigned>(code);
      out.reason = child.attribute("reason").value();
      if (!IsSafeHeaderValue(out.reason, source.rules())) {
        return source.Error(child, StrCat("reason ", kUnsafeHeaderValue));
      }
    } else if (name == "set-header") {
      SetHeader set;
      APIM_RETURN_IF_ERROR(Read(source, child, set));
      ApplySetHeader(set, out.headers);
    } else if (name == "set-body") {
      if (std::exchange(has_body, true)) return source.Error(child, "appears twice");
      APIM_RETURN_IF_ERROR(ReadText(source, child, out.body));
    }
  }
  if (std::optional<std::string> problem = StatusProblem(out.status, has_body);
      problem && source.rules() == Rules::kWrite) {
    pugi::xml_node status = node.child("set-status");
    return source.Error(status, status.attribute("code"), *problem);
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, ForwardRequest& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node,
                                  {"timeout", "timeout-ms", "buffer-response",
                                   "fail-on-error-status-code", "buffer-request-body"},
                                  {}));
  if (node.attribute("timeout") && node.attribute("timeout-ms")) {
    return source.Error(node, "timeout and timeout-ms are exclusive; give one");
  }
  std::optional<uint64_t> seconds, milliseconds;
  APIM_RETURN_IF_ERROR(
      ReadNumber(source, node, "timeout", 1, kMaxTimeoutSeconds, "seconds", seconds));
  APIM_RETURN_IF_ERROR(ReadNumber(source, node, "timeout-ms", 1, kMaxTimeoutSeconds * 1000,
                                  "milliseconds", milliseconds));
  if (seconds) out.timeout = std::chrono::seconds(*seconds);
  if (milliseconds) out.timeout = std::chrono::milliseconds(*milliseconds);
  APIM_RETURN_IF_ERROR(ReadBool(source, node, "buffer-response", out.buffer_response));
  APIM_RETURN_IF_ERROR(
      ReadBool(source, node, "fail-on-error-status-code", out.fail_on_error_status_code));
  return ReadBool(source, node, "buffer-request-body", out.buffer_request_body);
}

absl::Status Read(const Source& source, pugi::xml_node node, CacheLookup& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"vary-by-developer", "vary-by-developer-groups"},
                                  {"vary-by-header", "vary-by-query-parameter"}));
  // There are no developer accounts to vary by; "true" would promise a separation we lack.
  for (const char* name : {"vary-by-developer", "vary-by-developer-groups"}) {
    std::optional<bool> vary;
    APIM_RETURN_IF_ERROR(ReadBool(source, node, name, vary));
    if (vary.value_or(false)) {
      return source.Error(node, node.attribute(name), "is not supported; use \"false\"");
    }
  }
  for (pugi::xml_node child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    std::string text;
    APIM_RETURN_IF_ERROR(ReadText(source, child, text));
    std::string_view name = Trim(text);
    if (std::string_view(child.name()) == "vary-by-header") {
      if (!IsToken(name)) {
        return source.Error(child, StrCat("\"", name, "\" is not a valid header name"));
      }
      out.vary_by_headers.emplace_back(name);
    } else {
      if (name.empty()) return source.Error(child, "needs a query parameter name");
      out.vary_by_query_parameters.emplace_back(name);
    }
  }
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, CacheStore& out) {
  APIM_RETURN_IF_ERROR(CheckShape(source, node, {"duration"}, {}));
  uint64_t seconds = 0;
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "duration", 1, kMaxCacheDurationSeconds,
                                          "seconds", seconds));
  out.duration = std::chrono::seconds(seconds);
  return absl::OkStatus();
}

absl::Status Read(const Source& source, pugi::xml_node node, ValidateContent& out) {
  APIM_RETURN_IF_ERROR(CheckShape(
      source, node, {"unspecified-content-type-action", "max-size", "size-exceeded-action"}, {}));
  APIM_RETURN_IF_ERROR(ReadRequiredNumber(source, node, "max-size", 0, kMaxValidateContentBytes,
                                          "bytes", out.max_size));
  for (auto [name, field] :
       {std::pair{"unspecified-content-type-action", &out.unspecified_content_type_action},
        std::pair{"size-exceeded-action", &out.size_exceeded_action}}) {
    APIM_RETURN_IF_ERROR(ReadChoice(source, node, name, {"prevent", "detect", "ignore"}, *field));
  }
  return absl::OkStatus();
}

template <size_t kIndex>
absl::Status CompileStep(const Source& source, pugi::xml_node node, Step& step) {
  std::variant_alternative_t<kIndex, Step> value;
  APIM_RETURN_IF_ERROR(Read(source, node, value));
  step.emplace<kIndex>(std::move(value));
  return absl::OkStatus();
}

// Every policy element, in the order of Step's alternatives, with the sections it may appear in.
struct PolicyElement {
  std::string_view name;
  unsigned sections;
  absl::Status (*compile)(const Source&, pugi::xml_node, Step&);
};
constexpr std::array<PolicyElement, std::variant_size_v<Step>> kPolicyElements = {{
    {"base", kAnySection, &CompileStep<0>},
    {"set-header", kInbound | kOutbound | kOnError, &CompileStep<1>},
    {"check-header", kInbound, &CompileStep<2>},
    {"rate-limit", kInbound, &CompileStep<3>},
    {"rate-limit-by-key", kInbound, &CompileStep<4>},
    {"return-response", kInbound | kOutbound | kOnError, &CompileStep<5>},
    {"forward-request", kBackend, &CompileStep<6>},
    {"cache-lookup", kInbound, &CompileStep<7>},
    {"cache-store", kOutbound, &CompileStep<8>},
    {"validate-content", kInbound, &CompileStep<9>},
}};

std::string SupportedPolicies() {
  std::vector<std::string_view> names;
  for (const PolicyElement& element : kPolicyElements) names.push_back(element.name);
  std::sort(names.begin(), names.end());
  return StrJoin(names, ", ");
}

std::string SectionList(unsigned sections) {
  std::vector<std::string_view> names;
  for (size_t i = 0; i < kSectionNames.size(); ++i) {
    if (sections & (1u << i)) names.push_back(kSectionNames[i]);
  }
  return Tags(names);
}

absl::Status CompileSection(const Source& source, pugi::xml_node node, size_t index, Section& out) {
  APIM_RETURN_IF_ERROR(CheckAttributes(source, node, {}));
  for (pugi::xml_node child : node.children()) {
    APIM_RETURN_IF_ERROR(CheckNoText(source, child));
    if (child.type() != pugi::node_element) continue;
    std::string_view name = child.name();
    auto element = std::find_if(kPolicyElements.begin(), kPolicyElements.end(),
                                [&](const PolicyElement& e) { return e.name == name; });
    if (element == kPolicyElements.end()) {
      return source.Error(
          child, StrCat("unsupported policy <", name, ">; supported: ", SupportedPolicies()));
    }
    if (!(element->sections & (1u << index))) {
      return source.Error(child, StrCat("not allowed in <", kSectionNames[index], ">; only in ",
                                        SectionList(element->sections)));
    }
    if (name == "base" && out.has_base()) {
      return source.Error(child, StrCat("appears twice in <", kSectionNames[index], ">"));
    }
    Step step;
    APIM_RETURN_IF_ERROR(element->compile(source, child, step));
    out.steps.push_back(std::move(step));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view ElementName(const Step& step) { return kPolicyElements[step.index()].name; }

bool Section::has_base() const {
  return std::any_of(steps.begin(), steps.end(),
                     [](const Step& step) { return std::holds_alternative<Base>(step); });
}

absl::StatusOr<Document> Parse(std::string_view xml, Rules rules) {
  Source source(xml, rules);
  pugi::xml_document tree;
  pugi::xml_parse_result parsed =
      tree.load_buffer(xml.data(), xml.size(), kParseOptions, pugi::encoding_utf8);
  if (!parsed) {
    return absl::InvalidArgumentError(
        StrCat("policy.xml: line ", source.LineAt(parsed.offset), ": ", parsed.description()));
  }
  pugi::xml_node root = tree.document_element();
  if (std::string_view(root.name()) != "policies") {
    return source.Error(root, "the root element must be <policies>");
  }
  for (pugi::xml_node node : tree.children()) {
    if (node.type() == pugi::node_element && node != root) {
      return source.Error(node, "only one root element, <policies>, is allowed");
    }
    APIM_RETURN_IF_ERROR(CheckNoText(source, node));
  }
  APIM_RETURN_IF_ERROR(CheckAttributes(source, root, {}));
  Document document;
  std::array<Section*, 4> sections = {&document.inbound, &document.backend, &document.outbound,
                                      &document.on_error};
  std::array<bool, 4> seen{};
  for (pugi::xml_node node : root.children()) {
    APIM_RETURN_IF_ERROR(CheckNoText(source, node));
    if (node.type() != pugi::node_element) continue;
    auto name = std::find(kSectionNames.begin(), kSectionNames.end(), node.name());
    if (name == kSectionNames.end()) {
      return source.Error(node, StrCat("unsupported section <", node.name(),
                                       ">; supported: ", StrJoin(kSectionNames, ", ")));
    }
    size_t index = static_cast<size_t>(name - kSectionNames.begin());
    if (std::exchange(seen[index], true)) {
      return source.Error(node, "appears twice; put its policies in one section");
    }
    APIM_RETURN_IF_ERROR(CompileSection(source, node, index, *sections[index]));
  }
  return document;
}

Document Merge(const Document& parent, const Document& child) {
  auto merge = [](const Section& above, const Section& own) {
    Section merged;
    for (const Step& step : own.steps) {
      if (std::holds_alternative<Base>(step)) {
        merged.steps.insert(merged.steps.end(), above.steps.begin(), above.steps.end());
      } else {
        merged.steps.push_back(step);
      }
    }
    return merged;
  };
  return Document{merge(parent.inbound, child.inbound), merge(parent.backend, child.backend),
                  merge(parent.outbound, child.outbound), merge(parent.on_error, child.on_error)};
}

std::vector<std::string> SseViolations(const Document& document) {
  std::vector<std::string> reasons;
  auto add = [&](std::string reason) {
    if (std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
      reasons.push_back(std::move(reason));
    }
  };
  for (const Section* section :
       {&document.inbound, &document.backend, &document.outbound, &document.on_error}) {
    for (const Step& step : section->steps) {
      if (std::holds_alternative<CacheLookup>(step)) {
        add("cache-lookup: responses would be replayed from cache instead of streamed");
      } else if (std::holds_alternative<CacheStore>(step)) {
        add("cache-store: the response would be held until it ends to be stored, so events "
            "would be delayed");
      } else if (std::holds_alternative<ValidateContent>(step)) {
        add("validate-content: buffers the body, so events would be delayed");
      } else if (const auto* forward = std::get_if<ForwardRequest>(&step);
                 forward && forward->buffer_response.value_or(false)) {
        add("forward-request buffer-response=\"true\": events would be buffered");
      }
    }
  }
  return reasons;
}

}  // namespace apim::policy
