#include "bench/config_propagation.h"

#include <grpcpp/client_context.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <thread>
#include <utility>

#include "absl/status/status.h"

namespace apim::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds each call, so a stuck control plane ends the run instead of hanging it.
constexpr std::chrono::seconds kCallDeadline{2};

double Milliseconds(Clock::duration elapsed) {
  return std::chrono::duration<double, std::milli>(elapsed).count();
}

// The gRPC and absl status codes share their numbering.
absl::Status CallError(std::string_view call, const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      std::string(call) + ": " + status.error_message());
}

class ManagementCalls {
 public:
  ManagementCalls(v1::Management::StubInterface& stub, const PropagationOptions& options)
      : stub_(stub), options_(options) {}

  // Sets the API's description; returns the store revision the change got.
  absl::StatusOr<uint64_t> UpdateDescription(const std::string& description) {
    v1::UpdateApiRequest request;
    request.mutable_api()->set_name(options_.api);
    request.mutable_api()->set_description(description);
    request.mutable_update_mask()->add_paths("description");
    v1::Api updated;
    grpc::ClientContext context;
    Prepare(context, Clock::now() + kCallDeadline);
    if (grpc::Status status = stub_.UpdateApi(&context, request, &updated); !status.ok()) {
      return CallError("UpdateApi", status);
    }
    uint64_t revision = 0;
    const std::string& etag = updated.etag();
    auto [end, error] = std::from_chars(etag.data(), etag.data() + etag.size(), revision);
    if (error != std::errc() || end != etag.data() + etag.size()) {
      return absl::InternalError("UpdateApi returned etag \"" + etag + "\", not a revision");
    }
    return revision;
  }

  absl::StatusOr<std::vector<v1::GatewayWorker>> Workers(Clock::time_point deadline) {
    v1::ListGatewayWorkersRequest request;
    request.set_name(options_.gateway);
    v1::ListGatewayWorkersResponse response;
    grpc::ClientContext context;
    Prepare(context, std::min(deadline, Clock::now() + kCallDeadline));
    if (grpc::Status status = stub_.ListGatewayWorkers(&context, request, &response);
        !status.ok()) {
      return CallError("ListGatewayWorkers", status);
    }
    return std::vector<v1::GatewayWorker>(response.workers().begin(), response.workers().end());
  }

 private:
  void Prepare(grpc::ClientContext& context, Clock::time_point deadline) const {
    context.AddMetadata("authorization", "Bearer " + options_.admin_token);
    // gRPC takes system_clock deadlines only.
    context.set_deadline(std::chrono::system_clock::now() + (deadline - Clock::now()));
  }

  v1::Management::StubInterface& stub_;
  const PropagationOptions& options_;
};

enum class Outcome { kAcked, kNacked, kPending };

Outcome Check(const std::vector<v1::GatewayWorker>& workers, uint64_t revision, int wanted) {
  int acked = 0;
  for (const v1::GatewayWorker& worker : workers) {
    if (!worker.connected()) continue;
    if (worker.acked_version() >= revision) {
      ++acked;
    } else if (worker.nacked_version() >= revision) {
      return Outcome::kNacked;  // it keeps the old snapshot, so it will not ACK this one
    }
  }
  return acked >= wanted ? Outcome::kAcked : Outcome::kPending;
}

std::string SummaryJson(const LatencySummary& summary) {
  char text[256];
  std::snprintf(text, sizeof(text),
                R"({"count":%d,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f})",
                summary.count, summary.p50, summary.p90, summary.p99, summary.max, summary.mean);
  return text;
}

}  // namespace

LatencySummary Summarize(std::vector<double> samples_ms) {
  LatencySummary summary;
  if (samples_ms.empty()) return summary;
  std::sort(samples_ms.begin(), samples_ms.end());
  const auto rank = [&](double quantile) {
    const size_t index = static_cast<size_t>(std::ceil(quantile * samples_ms.size()));
    return samples_ms[std::clamp<size_t>(index, 1, samples_ms.size()) - 1];
  };
  summary.count = static_cast<int>(samples_ms.size());
  summary.p50 = rank(0.50);
  summary.p90 = rank(0.90);
  summary.p99 = rank(0.99);
  summary.max = samples_ms.back();
  summary.mean = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) /
                 static_cast<double>(summary.count);
  return summary;
}

absl::StatusOr<PropagationReport> MeasurePropagation(v1::Management::StubInterface& stub,
                                                     const PropagationOptions& options) {
  if (options.workers < 1 || options.updates < 1 || options.updates > kMaxUpdates) {
    return absl::InvalidArgumentError("need at least 1 worker and 1 to " +
                                      std::to_string(kMaxUpdates) + " updates");
  }
  ManagementCalls calls(stub, options);
  absl::StatusOr<std::vector<v1::GatewayWorker>> workers =
      calls.Workers(Clock::now() + kCallDeadline);
  if (!workers.ok()) return workers.status();
  const auto connected = std::count_if(workers->begin(), workers->end(),
                                       [](const v1::GatewayWorker& w) { return w.connected(); });
  if (connected < options.workers) {
    return absl::FailedPreconditionError(
        "gateway \"" + options.gateway + "\" has " + std::to_string(connected) +
        " connected workers, fewer than --workers " + std::to_string(options.workers));
  }

  PropagationReport report;
  report.workers = options.workers;
  std::vector<double> propagation_ms;
  std::vector<double> update_call_ms;
  // Unique per run and round, so every update is a real change.
  const std::string run =
      std::to_string(::getpid()) + "-" + std::to_string(Clock::now().time_since_epoch().count());
  for (int round = 1; round <= options.updates; ++round) {
    const Clock::time_point call_start = Clock::now();
    absl::StatusOr<uint64_t> revision = calls.UpdateDescription("config-propagation run " + run +
                                                                " update " + std::to_string(round));
    if (!revision.ok()) return revision.status();
    const Clock::time_point returned = Clock::now();
    update_call_ms.push_back(Milliseconds(returned - call_start));
    ++report.updates;

    const Clock::time_point deadline = returned + options.timeout;
    Outcome outcome = Outcome::kPending;
    while (outcome == Outcome::kPending && Clock::now() < deadline) {
      const Clock::time_point poll_start = Clock::now();
      workers = calls.Workers(deadline);
      ++report.polls;
      if (workers.ok()) {
        outcome = Check(*workers, *revision, options.workers);
      } else if (workers.status().code() != absl::StatusCode::kDeadlineExceeded) {
        return workers.status();
      }
      if (outcome == Outcome::kAcked) {
        propagation_ms.push_back(Milliseconds(Clock::now() - returned));
        ++report.completed;
      } else if (outcome == Outcome::kPending) {
        std::this_thread::sleep_until(std::min(poll_start + options.poll_interval, deadline));
      }
    }
    if (outcome != Outcome::kAcked) ++report.timeouts;
    if (outcome == Outcome::kNacked) ++report.nacked;
    std::this_thread::sleep_for(options.pause);
  }
  report.propagation = Summarize(std::move(propagation_ms));
  report.update_call = Summarize(std::move(update_call_ms));
  return report;
}

std::string FormatReportJson(const PropagationReport& report) {
  char head[256];
  std::snprintf(
      head, sizeof(head),
      R"({"workers":%d,"updates":%d,"completed":%d,"timeouts":%d,"nacked":%d,"polls":%d,)",
      report.workers, report.updates, report.completed, report.timeouts, report.nacked,
      report.polls);
  return std::string(head) + R"("propagation_ms":)" + SummaryJson(report.propagation) +
         R"(,"update_call_ms":)" + SummaryJson(report.update_call) + "}\n";
}

std::string FormatReportText(const PropagationReport& report) {
  char text[512];
  const LatencySummary& p = report.propagation;
  std::snprintf(text, sizeof(text),
                "workers            %d\n"
                "updates            %d (%d ACKed by every worker, %d timeouts, %d NACKed)\n"
                "propagation ms     p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n"
                "UpdateApi call ms  p50 %.2f  p99 %.2f\n"
                "polls              %d\n",
                report.workers, report.updates, report.completed, report.timeouts, report.nacked,
                p.p50, p.p90, p.p99, p.max, p.mean, report.update_call.p50, report.update_call.p99,
                report.polls);
  return text;
}

}  // namespace apim::bench
