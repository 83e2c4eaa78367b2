#include "common/policy/counter_key.h"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/str_cat.h"

namespace apim::policy::internal {
namespace {

constexpr std::string_view kSupportedCounterKeys =
    "@(context.Request.IpAddress), "
    "@(context.Request.Headers.GetValueOrDefault(\"NAME\",\"\")), "
    "@(context.Request.Url.Query.GetValueOrDefault(\"NAME\",\"\"))";

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

}  // namespace

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

}  // namespace apim::policy::internal
