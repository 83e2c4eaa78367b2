#pragma once
// "The worker recovered": after a test provokes an error path (a 502, a 504, a refused request,
// malformed input), the worker must still be running, still serving, and holding no more client
// connections than before. Take a WorkerHealth when the worker is in its usual state, provoke the
// error, then call ExpectRecovered().

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "tests/support/gateway.h"

namespace apim::testing {

// The sum of every series of a metric (labelled or not) on the worker's admin /metrics, or -1 if
// the worker reports none.
int64_t Metric(const GatewayProcess& gateway, std::string_view name);
// One series of a metric, written as /metrics shows it (e.g. name{result="full"}), or -1 if the
// worker reports no such series.
int64_t MetricSeries(const GatewayProcess& gateway, const std::string& series);

// Re-checks `condition` every 20 ms until it holds (true) or `timeout` passes (false). Only for
// state that offers no event to wait on, such as a gauge.
bool PollUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));

class WorkerHealth {
 public:
  // Records the worker's apim_active_connections gauge now, so take it when the connections the
  // test holds are settled (none just closed by the client). `ordinary_target` is a GET this
  // worker's configuration serves with 200 (e.g. "/orders/json?size=8"); `headers` are added to
  // it (each line ending in CRLF), e.g. a subscription key.
  WorkerHealth(GatewayProcess& gateway, std::string ordinary_target, std::string headers = "");

  // Expects (non-fatally) that the worker has not exited, answers /healthz with 200, serves
  // the ordinary request with 200, and that its apim_active_connections gauge is back at the
  // baseline within 5 s (it drops as sessions end; there is no event to wait on). Returns whether
  // all of that held, so a loop can stop once the worker is gone.
  bool ExpectRecovered() const;

  int64_t baseline_connections() const { return baseline_; }

 private:
  GatewayProcess& gateway_;
  std::string ordinary_target_;
  std::string headers_;
  int64_t baseline_ = 0;
};

}  // namespace apim::testing
