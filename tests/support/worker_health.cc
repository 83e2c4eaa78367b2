#include "tests/support/worker_health.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/raw_http.h"

namespace apim::testing {

using namespace std::chrono_literals;

namespace {

// A request that finds nobody listening (a worker that died) is a status of 0, not an exception.
SimpleResponse RequestOrNothing(uint16_t port, const std::string& target,
                                const std::string& headers = "") {
  try {
    return HttpRequest(port, "GET", target, headers, 5s);
  } catch (const std::runtime_error&) {
    return SimpleResponse{};
  }
}

}  // namespace

int64_t MetricSeries(const GatewayProcess& gateway, const std::string& series) {
  const std::string metrics = RequestOrNothing(gateway.admin_port(), "/metrics").body;
  const size_t at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(metrics.substr(at + series.size() + 2));
}

int64_t Metric(const GatewayProcess& gateway, std::string_view name) {
  const std::string text = RequestOrNothing(gateway.admin_port(), "/metrics").body;
  std::istringstream lines(text);
  std::string line;
  int64_t sum = 0;
  bool found = false;
  while (std::getline(lines, line)) {
    // "name value" or "name{labels} value"; comments start with '#'.
    if (!line.starts_with(name) || line.size() <= name.size()) continue;
    const char after = line[name.size()];
    if (after != ' ' && after != '{') continue;
    sum += std::stoll(line.substr(line.rfind(' ') + 1));
    found = true;
  }
  return found ? sum : -1;
}

bool PollUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

WorkerHealth::WorkerHealth(GatewayProcess& gateway, std::string ordinary_target,
                           std::string headers)
    : gateway_(gateway),
      ordinary_target_(std::move(ordinary_target)),
      headers_(std::move(headers)),
      baseline_(Metric(gateway, "apim_active_connections")) {
  EXPECT_GE(baseline_, 0) << "the worker reports no apim_active_connections";
}

bool WorkerHealth::ExpectRecovered() const {
  const int healthz = RequestOrNothing(gateway_.admin_port(), "/healthz").status;
  const SimpleResponse ordinary = RequestOrNothing(gateway_.port(), ordinary_target_, headers_);
  int64_t connections = -1;
  const bool settled =
      healthz == 200 && PollUntil([&] {
        return (connections = Metric(gateway_, "apim_active_connections")) == baseline_;
      });
  const bool recovered = healthz == 200 && ordinary.status == 200 && settled;
  // A worker that does not answer may be dying: give it a moment to be reaped, so that the
  // failure says why.
  const ExitResult exit = gateway_.process().WaitForExit(recovered ? 0ms : 1000ms);
  if (exit.exited) {
    const std::string stderr_text = gateway_.process().Stderr();
    ADD_FAILURE() << "the worker exited with code " << exit.code << "; the end of its stderr:\n"
                  << stderr_text.substr(stderr_text.size() -
                                        std::min<size_t>(stderr_text.size(), 2000));
    return false;
  }
  EXPECT_EQ(healthz, 200) << "admin /healthz";
  EXPECT_EQ(ordinary.status, 200) << "GET " << ordinary_target_ << ":\n" << ordinary.head;
  if (healthz == 200) {
    EXPECT_TRUE(settled) << "apim_active_connections is " << connections << ", was " << baseline_
                         << " before";
  }
  return recovered;
}

}  // namespace apim::testing
