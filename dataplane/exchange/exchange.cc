#include "dataplane/exchange/exchange.h"

#include <spdlog/spdlog.h>

#include <random>

#include "common/str_cat.h"
#include "dataplane/exchange/problem.h"

namespace apim::dataplane {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::awaitable;

awaitable<PhaseOutcome> Exchange::AdmitOrAnswer() {
  snapshot_ = context_.snapshots.Current();
  LimitRequest limits;
  const bool shared =
      snapshot_ != nullptr && context_.shared_counters.Shared(snapshot_->shared_state);
  AdmissionServices services{context_.rate_limiter,
                             context_.subscription_streams,
                             context_.cache,
                             context_.metrics.active_streams,
                             context_.metrics.streams_refused,
                             shared ? &limits : nullptr};
  AdmissionDecision decision = Admit({downstream_.request(), !downstream_.request_body_done(),
                                      record_.client_ip, &record_.headers},
                                     snapshot_.get(), services, Clock::now());
  if (!limits.empty()) {
    LimitVerdict verdict = co_await context_.shared_counters.Admit(limits);
    if (verdict.outcome == LimitVerdict::Outcome::kStreamsFull) ++context_.metrics.streams_refused;
    if (verdict.outcome != LimitVerdict::Outcome::kAdmitted) {
      decision =
          RefusedByLimits(verdict, limits, std::move(decision), downstream_.request().version());
    } else if (Admission* admitted = std::get_if<Admission>(&decision)) {
      admitted->stream_slot = std::move(verdict.slot);
    }
  }
  if (Answer* answer = std::get_if<Answer>(&decision)) {
    record_.api = answer->api;
    record_.error = std::move(answer->error);
    diagnostics_ = answer->diagnostics;
    bandwidth_ = std::move(answer->bandwidth);
    co_return co_await Send(std::move(answer->response));
  }
  admission_ = std::get<Admission>(std::move(decision));
  record_.api = admission_.route->api;
  diagnostics_ = &admission_.route->diagnostics;
  bandwidth_ = std::move(admission_.bandwidth);
  co_return PhaseOutcome();
}

awaitable<AfterExchange> Exchange::Send(http::response<http::string_body> response) {
  if (response.result_int() < 200) {
    // A policy's status (check-header, return-response) can only be final here.
    const std::string detail = StrCat("a policy answers with status ", response.result_int(),
                                      ", which cannot end a request");
    record_.error = detail;
    response = Problem(http::status::internal_server_error, "policy-status-invalid",
                       "Invalid policy status", detail);
  }
  record_.response_bytes = response.body().size();
  const unsigned status = response.result_int();
  response_started_ = true;
  co_await downstream_.SendAnswer(std::move(response));
  Finish(status);
  co_return downstream_.after();
}

awaitable<void> Exchange::Fail(const std::string& reason) {
  ++context_.metrics.session_failures;
  spdlog::error("{} {}: unexpected error: {}", record_.method, record_.target, reason);
  record_.error = StrCat("unexpected error: ", reason);
  if (!response_started_) {
    auto problem = Problem(http::status::internal_server_error, "internal-error", "Internal error",
                           "the gateway could not serve this request; its log says why");
    co_await Send(std::move(problem));
  } else if (!finished_) {
    Finish(500);
  }
}

awaitable<AfterExchange> Exchange::SendProblem(http::status status, std::string_view type,
                                               std::string_view title, std::string detail) {
  auto response = Problem(status, type, title, detail);
  record_.error = std::move(detail);
  co_return co_await Send(std::move(response));
}

void Exchange::Finish(unsigned status) {
  finished_ = true;
  record_.status = status;
  record_.duration = Since(start_);
  context_.metrics.CountRequest(record_.api, status);
  context_.metrics.bytes_to_clients += record_.response_bytes;
  // A quota's bandwidth counts once the exchange ends, so a running stream is never cut by it.
  context_.shared_counters.Charge(bandwidth_, record_.request_bytes + record_.response_bytes);
  if (diagnostics_ != nullptr && diagnostics_->configured) {
    // The API's diagnostic setting decides what is logged.
    if (diagnostics_->verbosity == v1::VERBOSITY_ERROR && status < 400) return;
    if (diagnostics_->sampling_percentage < 100) {
      thread_local std::minstd_rand random(std::random_device{}());
      if (random() % 100 >= diagnostics_->sampling_percentage) return;
    }
    record_.log_client_ip = diagnostics_->log_client_ip;
    record_.capture_bodies =
        diagnostics_->request_body_bytes > 0 || diagnostics_->response_body_bytes > 0;
  }
  WriteAccessLog(record_);
}

awaitable<AfterExchange> Exchange::RefuseForBudget() {
  ++context_.metrics.buffer_budget_exhausted_requests;
  context_.buffer_budget.NoteRefusal();
  auto problem =
      Problem(http::status::service_unavailable, "buffer-budget-exhausted", "Gateway busy",
              "the gateway holds as many buffered bodies as it may; retry later");
  problem.set(http::field::retry_after, "1");
  record_.error = "buffer budget exhausted";
  co_return co_await Send(std::move(problem));
}

void Exchange::CaptureResponseBody(std::string_view body) {
  if (diagnostics_ != nullptr) {
    record_.response_body = body.substr(0, diagnostics_->response_body_bytes);
  }
}

void Exchange::CaptureRequestBody(std::string_view bytes) {
  if (diagnostics_ == nullptr || record_.request_body.size() >= diagnostics_->request_body_bytes) {
    return;
  }
  record_.request_body.append(
      bytes.substr(0, diagnostics_->request_body_bytes - record_.request_body.size()));
}

}  // namespace apim::dataplane
