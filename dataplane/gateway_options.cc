#include "dataplane/gateway_options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <thread>

#include "common/files.h"
#include "common/return_if_error.h"
#include "common/str_cat.h"
#include "common/tls/client_tls.h"
#include "common/tls/pem.h"

namespace apim::dataplane {
namespace {

// What CLI11 fills: the options themselves, and the flags whose values are converted once parsed
// (seconds into durations, the token file into the token, the level's name into the level).
struct CommandLine {
  GatewayOptions options;
  std::string token_file;
  std::string log_level = "info";
  int request_header_timeout = 0;
  int connect_timeout = 0;
  double drain_seconds = 10;
  int tcp_keepalive_idle = 0;
  int tcp_keepalive_interval = 0;
  std::string redis_url;
  std::string redis_password_file;
  std::string redis_ca_file;
  std::string redis_key_prefix;
  int shared_state_timeout_ms = 50;
};

void AddOptions(CLI::App& app, CommandLine& line) {
  WorkerOptions& worker = line.options.worker;
  ConfigClientOptions& client = line.options.client;
  auto* config_option = app.add_option("--config", line.options.config,
                                       "Standalone: snapshot file (JSON of apim.v1.Snapshot)");
  auto* control_plane_option = app.add_option("--control-plane", client.control_plane,
                                              "Join a gateway on this control plane (host:port)");
  config_option->excludes(control_plane_option);
  app.add_option("--gateway", client.gateway, "Gateway to join")->needs(control_plane_option);
  app.add_option("--gateway-token-file", line.token_file,
                 "File whose first line is the gateway's worker token (else APIM_GATEWAY_TOKEN)")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls", client.tls.tls,
               "TLS to the control plane, verified against the system's CAs (or --ca-file)")
      ->needs(control_plane_option);
  app.add_option("--ca-file", client.tls.ca_file,
                 "TLS to the control plane, verified against the CAs in this PEM file")
      ->envname("APIM_CA_FILE")
      ->needs(control_plane_option);
  auto* cert_option = app.add_option("--cert-file", client.tls.cert_file,
                                     "Client certificate (PEM) shown to the control plane (mTLS)")
                          ->needs(control_plane_option);
  auto* key_option =
      app.add_option("--key-file", client.tls.key_file, "Private key of --cert-file (PEM)");
  cert_option->needs(key_option);
  key_option->needs(cert_option);
  app.add_flag("--allow-insecure", client.tls.allow_insecure,
               "Plaintext to a control plane that is not on loopback (the token is readable on "
               "the network)")
      ->needs(control_plane_option);
  app.add_option("--backend-ca-file", line.options.backend_ca_file,
                 "CA certificates (PEM) for https backends whose API names none (default: "
                 "$SSL_CERT_FILE, else the system's bundle)")
      ->check(CLI::ExistingFile);
  app.add_option("--worker-id", client.worker_id, "This worker's id (default: host-pid)");
  app.add_option("--advertise-address", client.address,
                 "Where this worker serves, as reported to the control plane");
  app.add_option("--snapshot-cache", client.cache_path,
                 "Last applied snapshot, served at start if the control plane is unreachable")
      ->capture_default_str();
  app.add_option("--listen", worker.listen, "Proxy address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--admin-listen", worker.admin_listen,
                 "Admin address for /healthz, /readyz, /metrics")
      ->capture_default_str();
  app.add_option("--tls-listen", worker.tls_listen,
                 "HTTPS address (port 0 picks one), serving the certificates of the snapshot "
                 "chosen by SNI");
  app.add_flag("--http2,!--no-http2", worker.limits.http2,
               "HTTP/2 to clients: ALPN h2 on --tls-listen, prior knowledge (h2c) on --listen")
      ->capture_default_str();
  app.add_option("--http2-max-concurrent-streams", worker.limits.http2_max_concurrent_streams,
                 "Streams one HTTP/2 connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--http2-max-resets-per-second", worker.limits.http2_max_resets_per_second,
                 "Stream resets an HTTP/2 connection may cause per second (twice as many in a "
                 "burst), then GOAWAY: the rapid-reset defence")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--http2-max-control-frames-per-second",
                 worker.limits.http2_max_control_frames_per_second,
                 "PING, SETTINGS, PRIORITY and empty DATA frames an HTTP/2 connection may send per "
                 "second (twice as many in a burst), then GOAWAY: the flood defence")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", worker.threads, "Worker threads, each with its own listener")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--request-header-timeout", line.request_header_timeout,
                 "Seconds a request's headers may take once its first byte arrives")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  app.add_option("--max-request-header-bytes", worker.limits.max_request_header_bytes,
                 "Largest request head: HTTP/1.1's request line and fields, HTTP/2's header list "
                 "(SETTINGS_MAX_HEADER_LIST_SIZE); past it 431")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--connect-timeout", line.connect_timeout,
                 "Seconds a backend's TCP handshake may take (then 504)")
      ->check(CLI::Range(1, 300))
      ->capture_default_str();
  app.add_option("--drain-timeout", line.drain_seconds,
                 "On SIGTERM: seconds before open streams are ended at an event boundary")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--tcp-keepalive-idle", line.tcp_keepalive_idle,
                 "Seconds of silence before TCP keepalive probes (client and backend sockets)")
      ->check(CLI::Range(1, 7200))
      ->capture_default_str();
  app.add_option("--tcp-keepalive-interval", line.tcp_keepalive_interval, "Seconds between probes")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  app.add_option("--tcp-keepalive-count", worker.limits.tcp_keepalive_count,
                 "Unanswered probes before the connection is dropped")
      ->check(CLI::Range(1, 30))
      ->capture_default_str();
  app.add_option("--cache-max-bytes", worker.cache_max_bytes,
                 "Response cache size for cache-lookup/cache-store policies")
      ->capture_default_str();
  app.add_option("--max-buffered-body-bytes", worker.limits.max_buffered_body_bytes,
                 "Largest body buffer-response or buffer-request-body holds (then 502 or 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--buffer-budget-bytes", worker.buffer_budget_bytes,
                 "Bytes all buffered bodies may hold together; past it responses are streamed "
                 "and requests that need buffering get 503")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40))
      ->capture_default_str();
  app.add_option("--rate-limit-max-keys", worker.rate_limit_max_keys,
                 "Counter keys rate-limit-by-key tracks; past it new keys share one window")
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}))
      ->capture_default_str();
  auto* redis = app.add_option(
      "--redis", line.redis_url,
      "Count limits across the gateway's workers on this Redis server: "
      "redis://[USER@]HOST:PORT[/DATABASE], rediss:// for TLS (wins over the gateway's "
      "shared-state setting)");
  app.add_option("--redis-password-file", line.redis_password_file,
                 "File whose first line is the Redis password")
      ->needs(redis);
  app.add_option("--redis-ca-file", line.redis_ca_file,
                 "CAs (PEM) that sign the Redis server's certificate (rediss://); default: the "
                 "system's bundle")
      ->needs(redis);
  app.add_option("--redis-key-prefix", line.redis_key_prefix,
                 "Prepended to every Redis key (default \"apim:<gateway>:\", \"apim:\" standalone)")
      ->needs(redis);
  app.add_option("--shared-state-timeout-ms", line.shared_state_timeout_ms,
                 "A shared-state reply later than this counts as unavailable")
      ->check(CLI::Range(1, 60'000))
      ->capture_default_str();
  app.add_flag("--shared-state-fail-closed", worker.shared_state.fail_closed,
               "While the shared-state server is unavailable, refuse calls that a limit counts "
               "(503) instead of counting them on each worker alone");
  app.add_option("--port-file", line.options.port_file,
                 "Write \"PROXY_PORT ADMIN_PORT [TLS_PORT]\" here once serving");
  app.add_option("--log-level", line.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
}

// The defaults the flags show in --help, before parsing.
CommandLine Defaults() {
  CommandLine line;
  WorkerOptions& worker = line.options.worker;
  worker.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  line.options.client.cache_path = "apim-gateway.snapshot";
  line.request_header_timeout = static_cast<int>(worker.limits.request_header_timeout.count());
  line.connect_timeout = static_cast<int>(worker.limits.connect_timeout.count());
  line.tcp_keepalive_idle = static_cast<int>(worker.limits.tcp_keepalive_idle.count());
  line.tcp_keepalive_interval = static_cast<int>(worker.limits.tcp_keepalive_interval.count());
  return line;
}

absl::Status FlagError(std::string_view flag, std::string_view message) {
  return absl::InvalidArgumentError(StrCat(flag, ": ", message));
}

// HOST:PORT with a port from 1 to 65535; the host may be a name, resolved when it is used.
absl::Status CheckHostAndPort(std::string_view flag, const std::string& text) {
  const size_t colon = text.rfind(':');
  int port = 0;
  bool valid = colon != std::string::npos && colon > 0;
  if (valid) {
    const char* end = text.data() + text.size();
    const auto [parsed_to, error] = std::from_chars(text.data() + colon + 1, end, port);
    valid = parsed_to == end && error == std::errc() && port >= 1 && port <= 65535;
  }
  if (!valid) {
    return FlagError(flag, StrCat("\"", text, "\" must be HOST:PORT with a port from 1 to 65535"));
  }
  return absl::OkStatus();
}

absl::Status CheckListenAddress(std::string_view flag, const std::string& text) {
  absl::StatusOr<boost::asio::ip::tcp::endpoint> endpoint = ParseEndpoint(text);
  return endpoint.ok() ? absl::OkStatus()
                       : FlagError(flag, std::string(endpoint.status().message()));
}

std::string HostAndPid() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return StrCat(host, "-", static_cast<int64_t>(getpid()));
}

// Settles what joining a control plane needs: the gateway, its token, this worker's id.
absl::Status SettleJoin(const std::string& token_file, ConfigClientOptions& client) {
  APIM_RETURN_IF_ERROR(CheckHostAndPort("--control-plane", client.control_plane));
  if (client.gateway.empty()) {
    return FlagError("--control-plane", "needs --gateway NAME, the gateway to join");
  }
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFirstLine(token_file);
    if (!token.ok()) {
      return FlagError("--gateway-token-file", std::string(token.status().message()));
    }
    client.token = *std::move(token);
  } else {
    client.token = SecretFromEnvironment("APIM_GATEWAY_TOKEN");
  }
  if (client.token.empty()) {
    return FlagError("--control-plane",
                     "needs the gateway's token in --gateway-token-file FILE or "
                     "APIM_GATEWAY_TOKEN (create one with `apimctl gateway token NAME`)");
  }
  if (!client.address.empty()) {
    APIM_RETURN_IF_ERROR(CheckHostAndPort("--advertise-address", client.address));
  }
  if (client.worker_id.empty()) client.worker_id = HostAndPid();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      tls::ChannelCredentialsFor(client.control_plane, client.tls);
  if (!credentials.ok()) return credentials.status();
  client.credentials = *std::move(credentials);
  return absl::OkStatus();
}

// --redis and its files into the worker's shared-state settings.
absl::Status SettleRedis(const CommandLine& line, GatewayOptions& options) {
  SharedStateOptions& shared = options.worker.shared_state;
  shared.timeout = std::chrono::milliseconds(line.shared_state_timeout_ms);
  if (line.redis_url.empty()) return absl::OkStatus();
  absl::StatusOr<RedisSettings> redis = RedisSettingsFromUrl(line.redis_url);
  if (!redis.ok()) return redis.status();
  if (!line.redis_password_file.empty()) {
    absl::StatusOr<std::string> password = ReadFirstLine(line.redis_password_file);
    if (!password.ok()) {
      return FlagError("--redis-password-file", std::string(password.status().message()));
    }
    redis->password = *std::move(password);
  }
  if (!line.redis_ca_file.empty()) {
    if (!redis->tls) return FlagError("--redis-ca-file", "needs a rediss:// (TLS) --redis URL");
    absl::StatusOr<std::string> ca = tls::ReadCertificates("--redis-ca-file", line.redis_ca_file);
    if (!ca.ok()) return ca.status();
    redis->ca_pem = *std::move(ca);
  }
  redis->key_prefix = !line.redis_key_prefix.empty() ? line.redis_key_prefix
                      : options.client.gateway.empty()
                          ? "apim:"
                          : StrCat("apim:", options.client.gateway, ":");
  shared.redis = *std::move(redis);
  return absl::OkStatus();
}

// CLI11 has checked each number's range; these are the checks it cannot make (addresses, flags
// that depend on each other, files), and the conversion of the parsed values into the options.
absl::StatusOr<GatewayOptions> Settle(CommandLine line) {
  GatewayOptions& options = line.options;
  if (options.config.empty() && options.client.control_plane.empty()) {
    return absl::InvalidArgumentError(
        "give --config FILE (standalone) or --control-plane HOST:PORT --gateway NAME");
  }
  APIM_RETURN_IF_ERROR(CheckListenAddress("--listen", options.worker.listen));
  APIM_RETURN_IF_ERROR(CheckListenAddress("--admin-listen", options.worker.admin_listen));
  if (!options.worker.tls_listen.empty()) {
    APIM_RETURN_IF_ERROR(CheckListenAddress("--tls-listen", options.worker.tls_listen));
  }
  options.log_level = spdlog::level::from_str(line.log_level);
  if (options.log_level == spdlog::level::off && line.log_level != "off") {
    return FlagError("--log-level",
                     StrCat("\"", line.log_level, "\" is not trace, debug, info, warn or error"));
  }
  if (!options.client.control_plane.empty()) {
    APIM_RETURN_IF_ERROR(SettleJoin(line.token_file, options.client));
  }
  if (!options.backend_ca_file.empty()) {
    APIM_RETURN_IF_ERROR(
        tls::ReadCertificates("--backend-ca-file", options.backend_ca_file).status());
  }
  APIM_RETURN_IF_ERROR(SettleRedis(line, options));
  ProxyLimits& limits = options.worker.limits;
  limits.request_header_timeout = std::chrono::seconds(line.request_header_timeout);
  limits.connect_timeout = std::chrono::seconds(line.connect_timeout);
  limits.tcp_keepalive_idle = std::chrono::seconds(line.tcp_keepalive_idle);
  limits.tcp_keepalive_interval = std::chrono::seconds(line.tcp_keepalive_interval);
  options.drain_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(line.drain_seconds * 1000));
  return std::move(options);
}

}  // namespace

absl::StatusOr<std::variant<GatewayOptions, GatewayHelp>> ParseGatewayOptions(
    const std::vector<std::string>& args) {
  CLI::App app{"apim-gateway: SSE-native API gateway worker", "apim-gateway"};
  CommandLine line = Defaults();
  AddOptions(app, line);
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 takes them reversed
  } catch (const CLI::CallForHelp&) {
    return GatewayHelp{app.help()};
  } catch (const CLI::ParseError& error) {
    return absl::InvalidArgumentError(error.what());
  }
  absl::StatusOr<GatewayOptions> options = Settle(std::move(line));
  if (!options.ok()) return options.status();
  return *std::move(options);
}

std::string AdvertiseAddress(const GatewayOptions& options, uint16_t proxy_port) {
  if (!options.client.address.empty()) return options.client.address;
  const std::string& listen = options.worker.listen;
  return StrCat(listen.substr(0, listen.rfind(':') + 1), proxy_port);
}

}  // namespace apim::dataplane
