#pragma once
// Config propagation: how long after a Management call returns every worker of a gateway has
// applied the change. Each round updates one API's description (UpdateApi, update_mask
// ["description"]), takes the returned etag, which is the store revision and so the snapshot
// version workers ACK, and polls ListGatewayWorkers until the gateway's connected workers have
// all ACKed that version or later.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "apim/v1/management.grpc.pb.h"

namespace apim::bench {

inline constexpr int kMaxUpdates = 10000;

struct PropagationOptions {
  std::string admin_token;  // sent as "authorization: Bearer TOKEN"
  std::string gateway;
  std::string api;  // an API attached to the gateway; its description is overwritten
  int workers = 1;  // connected workers that must ACK
  int updates = 50;
  std::chrono::milliseconds poll_interval{1};
  std::chrono::milliseconds timeout{5000};  // per update, from the call's return
  std::chrono::milliseconds pause{5};       // between one update's end and the next call
};

// Latencies in milliseconds, nearest-rank percentiles; all zero when there are no samples.
struct LatencySummary {
  int count = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
  double mean = 0;
};

LatencySummary Summarize(std::vector<double> samples_ms);

struct PropagationReport {
  int workers = 0;
  int updates = 0;             // UpdateApi calls that succeeded
  int completed = 0;           // of those, how many every worker ACKed within the timeout
  int timeouts = 0;            // not ACKed by every worker in time (a NACK counts here too)
  int nacked = 0;              // of the timeouts: some worker NACKed the version
  int polls = 0;               // ListGatewayWorkers calls made while waiting
  LatencySummary propagation;  // call returned -> all ACKed, completed updates only
  LatencySummary update_call;  // the UpdateApi call itself
};

// Runs the rounds against `stub`. Fails at once, before any update, if fewer than
// `options.workers` workers of the gateway are connected; fails on the first Management error.
absl::StatusOr<PropagationReport> MeasurePropagation(v1::Management::StubInterface& stub,
                                                     const PropagationOptions& options);

std::string FormatReportJson(const PropagationReport& report);  // one line
std::string FormatReportText(const PropagationReport& report);

}  // namespace apim::bench
