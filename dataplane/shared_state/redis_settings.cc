#include "dataplane/shared_state/redis_settings.h"

#include <boost/url/parse.hpp>
#include <charconv>

#include "common/str_cat.h"
#include "common/validation.h"

namespace apim::dataplane {
namespace {

// HOST:PORT that ValidateSharedState accepted: the host without IPv6 brackets, and the port.
void SplitHostPort(std::string_view text, RedisSettings& out) {
  const size_t colon = text.rfind(':');
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
  out.host = std::string(host);
  std::from_chars(text.data() + colon + 1, text.data() + text.size(), out.port);
}

// The URL as an error may show it: a password in it (which is refused) is not repeated.
std::string Redacted(std::string url) {
  const size_t authority = url.find("://");
  if (authority == std::string::npos) return url;
  const size_t at = url.find('@', authority + 3);
  const size_t colon = url.find(':', authority + 3);
  if (at != std::string::npos && colon < at) url.replace(colon + 1, at - colon - 1, "REDACTED");
  return url;
}

}  // namespace

std::string RedisSettings::Describe() const {
  const bool v6 = host.find(':') != std::string::npos;
  return StrCat(tls ? "rediss://" : "redis://", v6 ? "[" : "", host, v6 ? "]" : "", ":", port, "/",
                database);
}

absl::StatusOr<std::shared_ptr<const RedisSettings>> RedisSettingsFromSnapshot(
    const v1::Snapshot& snapshot) {
  if (!snapshot.has_shared_state() || snapshot.shared_state().redis_address().empty()) {
    return nullptr;
  }
  const v1::SharedState& shared = snapshot.shared_state();
  // The control plane's rules, so a standalone file is held to them too.
  if (absl::Status valid = ValidateSharedState(shared, "shared_state"); !valid.ok()) return valid;
  auto settings = std::make_shared<RedisSettings>();
  SplitHostPort(shared.redis_address(), *settings);
  settings->tls = shared.tls();
  settings->ca_pem = shared.ca_certificate();
  settings->username = shared.username();
  settings->password = shared.password();
  settings->database = shared.database();
  settings->key_prefix =
      shared.key_prefix().empty() ? StrCat("apim:", snapshot.gateway(), ":") : shared.key_prefix();
  return settings;
}

absl::StatusOr<RedisSettings> RedisSettingsFromUrl(const std::string& url) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("--redis \"", Redacted(url), "\" ", why,
               "; expected redis://[USER@]HOST:PORT[/DATABASE] or rediss:// for TLS"));
  };
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return bad("is not a URL");
  RedisSettings settings;
  if (parsed->scheme() == "rediss") {
    settings.tls = true;
  } else if (parsed->scheme() != "redis") {
    return bad("has another scheme");
  }
  if (parsed->has_password()) {
    return bad("holds a password: give it in a file with --redis-password-file");
  }
  if (parsed->has_query() || parsed->has_fragment()) return bad("has a query or a fragment");
  settings.username = std::string(parsed->user());
  if (!parsed->has_port()) return bad("has no port");
  settings.port = parsed->port_number();
  if (settings.port == 0) return bad("has port 0");
  settings.host = std::string(parsed->encoded_host_address());
  if (settings.host.starts_with('['))
    settings.host = settings.host.substr(1, settings.host.size() - 2);
  if (settings.host.empty()) return bad("has no host");
  std::string_view path = parsed->encoded_path();
  if (path.starts_with('/')) path.remove_prefix(1);
  if (!path.empty()) {
    auto [end, error] = std::from_chars(path.data(), path.data() + path.size(), settings.database);
    if (error != std::errc() || end != path.data() + path.size()) {
      return bad("has a path that is not a database number");
    }
  }
  return settings;
}

}  // namespace apim::dataplane
