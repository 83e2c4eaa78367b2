#include "dataplane/admin/access_log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace apim::dataplane {
namespace {

spdlog::logger& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto created = spdlog::stdout_logger_mt("access");
    created->set_pattern("%v");
    return created;
  }();
  return *logger;
}

}  // namespace

void WriteAccessLog(const AccessRecord& record) {
  nlohmann::json line = {{"time", std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count()},
                         {"api", record.api},
                         {"method", record.method},
                         {"target", record.target},
                         {"status", record.status},
                         {"request_bytes", record.request_bytes},
                         {"response_bytes", record.response_bytes},
                         {"duration_ms", record.duration.count() / 1000.0},
                         {"ttfb_ms", record.time_to_first_byte.count() / 1000.0}};
  if (record.stream) {
    line["stream"] = true;
    line["events"] = record.events;
  }
  if (!record.error.empty()) line["error"] = record.error;
  if (record.log_client_ip) line["client_ip"] = record.client_ip;
  if (!record.headers.empty()) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [name, value] : record.headers) headers[name] = value;
    line["headers"] = std::move(headers);
  }
  if (record.capture_bodies && !record.stream) {
    line["request_body"] = record.request_body;
    line["response_body"] = record.response_body;
  }
  Logger().info(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace apim::dataplane
