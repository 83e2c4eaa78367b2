// The policy runtime: what compiled steps do to a request and its response (set-header,
// check-header, rate limits, return-response, forward-request), the cache key, and the open
// streams counted per subscription.
#include "dataplane/policy/policy_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apim::dataplane {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::Not;
using namespace std::chrono_literals;
using policy::ExistsAction;

// Every value of `name` in `fields`, in order.
std::vector<std::string> Values(const http::fields& fields, std::string_view name) {
  std::vector<std::string> values;
  for (auto [it, end] = fields.equal_range(name); it != end; ++it) values.emplace_back(it->value());
  return values;
}

policy::Section SectionOf(std::vector<policy::Step> steps) {
  return policy::Section{std::move(steps)};
}

policy::CheckHeader Check(std::string name, std::vector<std::string> values) {
  policy::CheckHeader check;
  check.name = std::move(name);
  check.values = std::move(values);
  return check;
}

policy::RateLimitByKey ByKey(policy::CounterKey::Kind kind, std::string value, uint32_t calls) {
  return policy::RateLimitByKey{calls, 60s, policy::CounterKey{kind, std::move(value)}};
}

// One request through an inbound section: its target, client, subscription and API, and one
// header when `header` and `value` are both given.
struct Call {
  std::string_view target = "/orders/1";
  std::string client_ip = "198.51.100.1";
  std::string subscription = "";  // Initialized, so that designated initializers may skip it.
  std::string api = "orders";
  std::string_view header = "";
  std::string_view value = "";
  // Set: the rate limits are gathered here (for the shared-state server) instead of counted.
  std::vector<CallCount>* deferred = nullptr;
};

class ApplyInboundTest : public ::testing::Test {
 protected:
  InboundOutcome Run(const policy::Section& inbound, http::fields& request, const Call& call = {}) {
    return ApplyInbound(inbound, request, call.target, call.client_ip, call.api, call.subscription,
                        limiter_, call.deferred, 11);
  }
  InboundOutcome Run(const policy::Section& inbound) { return Run(inbound, request_); }

  // Whether `call`, with headers of its own, is answered instead of forwarded.
  bool Refused(const policy::Section& inbound, const Call& call) {
    http::fields request;
    if (!call.header.empty() && !call.value.empty()) request.set(call.header, call.value);
    return Run(inbound, request, call).answer.has_value();
  }

  Metrics metrics_;
  RateLimiter limiter_{metrics_};
  http::fields request_;
};

// --- set-header ---

TEST_F(ApplyInboundTest, OverrideReplacesEveryLineOfTheHeaderWhateverItsCase) {
  request_.insert("x-tenant", "a");
  request_.insert("X-Tenant", "b");
  Run(SectionOf({policy::SetHeader{"X-TENANT", ExistsAction::kOverride, {"c", "d"}}}));
  EXPECT_THAT(Values(request_, "X-Tenant"), ElementsAre("c", "d"));
}

TEST_F(ApplyInboundTest, SkipKeepsAPresentHeaderAndAddsAMissingOne) {
  request_.set("X-Present", "client");
  Run(SectionOf({policy::SetHeader{"X-Present", ExistsAction::kSkip, {"policy"}},
                 policy::SetHeader{"X-Missing", ExistsAction::kSkip, {"policy"}}}));
  EXPECT_THAT(Values(request_, "X-Present"), ElementsAre("client"));
  EXPECT_THAT(Values(request_, "X-Missing"), ElementsAre("policy"));
}

TEST_F(ApplyInboundTest, AppendAddsBesideThePresentLines) {
  request_.set("X-Via", "client");
  Run(SectionOf({policy::SetHeader{"X-Via", ExistsAction::kAppend, {"gw"}}}));
  EXPECT_THAT(Values(request_, "X-Via"), ElementsAre("client", "gw"));
}

TEST_F(ApplyInboundTest, DeleteRemovesEveryLineOfTheHeader) {
  request_.insert("X-Debug", "1");
  request_.insert("x-debug", "2");
  request_.set("X-Other", "kept");
  Run(SectionOf({policy::SetHeader{"X-Debug", ExistsAction::kDelete, {}}}));
  EXPECT_THAT(Values(request_, "X-Debug"), IsEmpty());
  EXPECT_THAT(Values(request_, "X-Other"), ElementsAre("kept"));
}

// --- check-header ---

TEST_F(ApplyInboundTest, PassesAHeaderWithAnAllowedValue) {
  const policy::Section inbound = SectionOf({Check("X-Role", {"admin", "reader"})});
  EXPECT_FALSE(Refused(inbound, {.header = "X-Role", .value = "reader"}));
  EXPECT_TRUE(Refused(inbound, {.header = "X-Role", .value = "writer"}));
}

TEST_F(ApplyInboundTest, RefusesAMissingHeaderWithTheDefaultStatusAndMessage) {
  InboundOutcome outcome = Run(SectionOf({Check("X-Role", {})}));
  ASSERT_TRUE(outcome.answer);
  EXPECT_EQ(outcome.answer->result_int(), 401u);
  EXPECT_EQ((*outcome.answer)[http::field::content_type], "application/problem+json");
  EXPECT_THAT(outcome.answer->body(), HasSubstr("header X-Role is missing or not allowed"));
  EXPECT_THAT(outcome.answer->body(), HasSubstr("urn:apim:problem:check-header"));
}

TEST_F(ApplyInboundTest, AnswersAFailedCheckWithItsStatusAndMessage) {
  policy::CheckHeader check = Check("X-Role", {"admin"});
  check.failed_check_httpcode = 403;
  check.failed_check_error_message = "admins only";
  request_.set("X-Role", "guest");
  InboundOutcome outcome = Run(SectionOf({check}));
  ASSERT_TRUE(outcome.answer);
  EXPECT_EQ(outcome.answer->result_int(), 403u);
  EXPECT_THAT(outcome.answer->body(), HasSubstr("admins only"));
  EXPECT_THAT(outcome.answer->body(), Not(HasSubstr("missing or not allowed")));
}

TEST_F(ApplyInboundTest, ChecksEveryLineOfARepeatedHeader) {
  const policy::Section inbound = SectionOf({Check("X-Role", {"admin"})});
  request_.insert("X-Role", "admin");
  request_.insert("X-Role", "root");
  EXPECT_TRUE(Run(inbound).answer) << "a second line must not smuggle a value past the check";

  http::fields both_allowed;
  both_allowed.insert("X-Role", "admin");
  both_allowed.insert("X-Role", "admin");
  EXPECT_FALSE(Run(inbound, both_allowed).answer);
}

TEST_F(ApplyInboundTest, ComparesValuesIgnoringCaseOnlyWhenAsked) {
  policy::CheckHeader check = Check("X-Role", {"admin"});
  EXPECT_FALSE(Refused(SectionOf({check}), {.header = "X-Role", .value = "ADMIN"}));
  check.ignore_case = false;
  EXPECT_TRUE(Refused(SectionOf({check}), {.header = "X-Role", .value = "ADMIN"}));
  EXPECT_FALSE(Refused(SectionOf({check}), {.header = "X-Role", .value = "admin"}));
}

TEST_F(ApplyInboundTest, WithoutValuesChecksOnlyThatTheHeaderIsThere) {
  const policy::Section inbound = SectionOf({Check("Authorization", {})});
  EXPECT_FALSE(Refused(inbound, {.header = "authorization", .value = "Bearer anything"}));
  EXPECT_TRUE(Refused(inbound, {}));
}

TEST_F(ApplyInboundTest, StopsAtAFailedCheck) {
  const policy::Section inbound =
      SectionOf({Check("X-Role", {}), policy::SetHeader{"X-After", ExistsAction::kOverride, {"1"}},
                 policy::RateLimit{1, 60s}});
  EXPECT_TRUE(Run(inbound).answer);
  EXPECT_THAT(Values(request_, "X-After"), IsEmpty());
  request_.set("X-Role", "any");
  EXPECT_FALSE(Run(inbound).answer) << "the refused request was not counted by the rate limit";
}

// --- rate-limit and rate-limit-by-key ---

TEST_F(ApplyInboundTest, AnswersTooManyRequestsPastTheCallsWithRetryAfter) {
  const policy::Section inbound = SectionOf({policy::RateLimit{2, 60s}});
  EXPECT_FALSE(Run(inbound).answer);
  EXPECT_FALSE(Run(inbound).answer);
  InboundOutcome third = Run(inbound);
  ASSERT_TRUE(third.answer);
  EXPECT_EQ(third.answer->result_int(), 429u);
  EXPECT_THAT(std::stoi(std::string((*third.answer)[http::field::retry_after])),
              AllOf(Ge(1), Le(60)));
  EXPECT_THAT(third.answer->body(), HasSubstr("urn:apim:problem:rate-limited"));
  EXPECT_THAT(third.answer->body(), HasSubstr("orders"));
}

TEST_F(ApplyInboundTest, CountsARateLimitPerSubscriptionAndPerApi) {
  const policy::Section inbound = SectionOf({policy::RateLimit{1, 60s}});
  EXPECT_FALSE(Refused(inbound, {.subscription = "team-a"}));
  EXPECT_TRUE(Refused(inbound, {.subscription = "team-a"}));
  EXPECT_FALSE(Refused(inbound, {.subscription = "team-b"}));
  EXPECT_FALSE(Refused(inbound, {})) << "no subscription";
  EXPECT_FALSE(Refused(inbound, {.subscription = "team-a", .api = "users"}));
}

TEST_F(ApplyInboundTest, DeferredRateLimitsAreGatheredInOrderAndTheStepsAfterThemRun) {
  const policy::Section inbound =
      SectionOf({policy::RateLimit{1, 60s}, ByKey(policy::CounterKey::Kind::kHeader, "X-Tenant", 5),
                 policy::ReturnResponse{204, "", {}, ""}});
  for (int call = 0; call < 3; ++call) {
    std::vector<CallCount> deferred;
    http::fields request;
    request.set("X-Tenant", "t1");
    InboundOutcome outcome =
        Run(inbound, request, {.subscription = "team-a", .deferred = &deferred});
    // Nothing is counted here: every time both limits are handed over, and the return-response
    // after them answers (it stands only if the caller's count admits the call).
    ASSERT_EQ(deferred.size(), 2u);
    EXPECT_EQ(deferred[0].scope, "orders#0#team-a");
    EXPECT_EQ(deferred[0].key, "");
    EXPECT_EQ(deferred[0].calls, 1u);
    EXPECT_EQ(deferred[0].period, 60s);
    EXPECT_EQ(deferred[1].scope, "orders#1#team-a");
    EXPECT_EQ(deferred[1].key, "t1");
    EXPECT_EQ(deferred[1].calls, 5u);
    ASSERT_TRUE(outcome.answer);
    EXPECT_EQ(outcome.answer->result_int(), 204u);
  }
  EXPECT_FALSE(Refused(SectionOf({policy::RateLimit{1, 60s}}), {.subscription = "team-a"}))
      << "the local counter saw none of the deferred calls";
}

TEST_F(ApplyInboundTest, ASpentQuotaIsRefusedWith403AndRetryAfter) {
  const policy::Section inbound = SectionOf({policy::Quota{2, 0, 3600s}});
  http::fields request;
  EXPECT_FALSE(Run(inbound, request, {.subscription = "team-a"}).answer);
  EXPECT_FALSE(Run(inbound, request, {.subscription = "team-a"}).answer);
  InboundOutcome spent = Run(inbound, request, {.subscription = "team-a"});
  ASSERT_TRUE(spent.answer);
  EXPECT_EQ(spent.answer->result_int(), 403u);
  EXPECT_THAT(spent.answer->body(), HasSubstr("quota-exceeded"));
  EXPECT_GE(std::stoi(std::string((*spent.answer)[http::field::retry_after])), 3599);
  EXPECT_FALSE(Run(inbound, request, {.subscription = "team-b"}).answer)
      << "each subscription has its own quota";
}

TEST_F(ApplyInboundTest, QuotasWithABandwidthAreHandedBackToChargeTheirBytes) {
  const policy::Section inbound =
      SectionOf({policy::Quota{0, 4, 60s},
                 policy::QuotaByKey{5, 0, 60s, {policy::CounterKey::Kind::kClientIp, ""}},
                 policy::QuotaByKey{0, 1, 60s, {policy::CounterKey::Kind::kHeader, "X-Tenant"}}});
  http::fields request;
  request.set("X-Tenant", "t1");
  InboundOutcome outcome = Run(inbound, request, {.subscription = "team-a"});
  ASSERT_FALSE(outcome.answer);
  // The calls-only quota needs no charge; the two with a bandwidth, in bytes, with their keys.
  ASSERT_EQ(outcome.bandwidth.size(), 2u);
  EXPECT_EQ(outcome.bandwidth[0].scope, "orders#0#team-a");
  EXPECT_EQ(outcome.bandwidth[0].bytes, 4096u);
  EXPECT_TRUE(outcome.bandwidth[0].quota);
  EXPECT_EQ(outcome.bandwidth[1].key, "t1");
  EXPECT_EQ(outcome.bandwidth[1].bytes, 1024u);
  // Once charged past its bandwidth, the header's quota refuses; another tenant's does not.
  limiter_.Charge(outcome.bandwidth[1], 1024);
  EXPECT_TRUE(Refused(inbound, {.subscription = "team-a", .header = "X-Tenant", .value = "t1"}));
  EXPECT_FALSE(Refused(inbound, {.subscription = "team-a", .header = "X-Tenant", .value = "t2"}));
}

TEST_F(ApplyInboundTest, DeferredQuotasAreGatheredAsQuotas) {
  const policy::Section inbound = SectionOf({policy::Quota{1, 2, 60s}});
  std::vector<CallCount> deferred;
  http::fields request;
  InboundOutcome outcome = Run(inbound, request, {.subscription = "s", .deferred = &deferred});
  ASSERT_EQ(deferred.size(), 1u);
  EXPECT_TRUE(deferred[0].quota);
  EXPECT_EQ(deferred[0].calls, 1u);
  EXPECT_EQ(deferred[0].bytes, 2048u);
  EXPECT_EQ(outcome.bandwidth.size(), 1u);
}

TEST_F(ApplyInboundTest, CountsEachClientIpApart) {
  const policy::Section inbound =
      SectionOf({ByKey(policy::CounterKey::Kind::kClientIp, "", /*calls=*/1)});
  EXPECT_FALSE(Refused(inbound, {.client_ip = "198.51.100.1"}));
  EXPECT_TRUE(Refused(inbound, {.client_ip = "198.51.100.1"}));
  EXPECT_FALSE(Refused(inbound, {.client_ip = "198.51.100.2"}));
}

TEST_F(ApplyInboundTest, CountsEachHeaderValueApartAndRequestsWithoutItTogether) {
  const policy::Section inbound =
      SectionOf({ByKey(policy::CounterKey::Kind::kHeader, "X-Tenant", /*calls=*/1)});
  EXPECT_FALSE(Refused(inbound, {.header = "X-Tenant", .value = "t1"}));
  EXPECT_TRUE(Refused(inbound, {.header = "x-tenant", .value = "t1"}));
  EXPECT_FALSE(Refused(inbound, {.header = "X-Tenant", .value = "t2"}));
  EXPECT_FALSE(Refused(inbound, {})) << "the first request without the header";
  EXPECT_TRUE(Refused(inbound, {})) << "the second request without the header";
}

TEST_F(ApplyInboundTest, CountsEachQueryParameterValueApart) {
  const policy::Section inbound =
      SectionOf({ByKey(policy::CounterKey::Kind::kQueryParameter, "tenant", /*calls=*/1)});
  EXPECT_FALSE(Refused(inbound, {.target = "/x?tenant=a&page=1"}));
  EXPECT_TRUE(Refused(inbound, {.target = "/y?page=2&tenant=a"}));
  EXPECT_FALSE(Refused(inbound, {.target = "/x?tenant=b"}));
  EXPECT_FALSE(Refused(inbound, {.target = "/x?tenant=a%20b"}));
  EXPECT_TRUE(Refused(inbound, {.target = "/x?other=1&tenant=a%20b"}));
}

TEST_F(ApplyInboundTest, CountsEveryRequestTogetherUnderALiteralKey) {
  const policy::Section inbound =
      SectionOf({ByKey(policy::CounterKey::Kind::kLiteral, "everyone", /*calls=*/1)});
  EXPECT_FALSE(Refused(inbound, {.client_ip = "198.51.100.1"}));
  EXPECT_TRUE(Refused(inbound, {.client_ip = "198.51.100.2"}));
}

// --- return-response ---

TEST_F(ApplyInboundTest, AnswersWithTheReturnResponsesStatusHeadersAndBody) {
  const policy::Section inbound = SectionOf(
      {policy::ReturnResponse{418,
                              "Short and stout",
                              {{"X-A", "1"}, {"X-A", "2"}, {"Content-Type", "text/plain"}},
                              "tea"}});
  InboundOutcome outcome = Run(inbound);
  ASSERT_TRUE(outcome.answer);
  EXPECT_EQ(outcome.answer->result_int(), 418u);
  EXPECT_EQ(outcome.answer->reason(), "Short and stout");
  EXPECT_THAT(Values(*outcome.answer, "X-A"), ElementsAre("1", "2"));
  EXPECT_EQ((*outcome.answer)[http::field::content_type], "text/plain");
  EXPECT_EQ(outcome.answer->body(), "tea");
  EXPECT_EQ((*outcome.answer)[http::field::content_length], "3");
  EXPECT_EQ(outcome.answer->version(), 11u);
}

TEST_F(ApplyInboundTest, SendsNoBodyWithAStatusThatForbidsOne) {
  InboundOutcome outcome = Run(SectionOf({policy::ReturnResponse{204, "", {}, "ignored"}}));
  ASSERT_TRUE(outcome.answer);
  EXPECT_EQ(outcome.answer->result_int(), 204u);
  EXPECT_EQ(outcome.answer->body(), "");
  EXPECT_EQ(outcome.answer->count(http::field::transfer_encoding), 0u);
}

// RFC 9110 section 8.6 forbids Content-Length in a 204 (and 1xx) response, and on a 304 it would
// misstate the representation's length.
TEST_F(ApplyInboundTest, SendsNoContentLengthWithA204) {
  InboundOutcome outcome = Run(SectionOf({policy::ReturnResponse{204, "", {}, ""}}));
  ASSERT_TRUE(outcome.answer);
  EXPECT_EQ(outcome.answer->count(http::field::content_length), 0u);
}

TEST_F(ApplyInboundTest, RunsTheStepsBeforeAReturnResponseAndNoneAfter) {
  Run(SectionOf({policy::SetHeader{"X-Before", ExistsAction::kOverride, {"1"}},
                 policy::ReturnResponse{200, "", {}, ""},
                 policy::SetHeader{"X-After", ExistsAction::kOverride, {"1"}}}));
  EXPECT_THAT(Values(request_, "X-Before"), ElementsAre("1"));
  EXPECT_THAT(Values(request_, "X-After"), IsEmpty());
}

// --- Steps the session acts on later ---

TEST_F(ApplyInboundTest, NotesCacheLookupAndValidateContentForTheSession) {
  const policy::Section inbound =
      SectionOf({policy::CacheLookup{{"Accept"}, {}}, policy::ValidateContent{1024}});
  InboundOutcome outcome = Run(inbound);
  EXPECT_FALSE(outcome.answer);
  EXPECT_EQ(outcome.cache_lookup, &std::get<policy::CacheLookup>(inbound.steps[0]));
  EXPECT_EQ(outcome.validate_content, &std::get<policy::ValidateContent>(inbound.steps[1]));
}

TEST_F(ApplyInboundTest, NotesNothingForAnEmptySection) {
  request_.set("X-A", "1");
  InboundOutcome outcome = Run(policy::Section{});
  EXPECT_FALSE(outcome.answer);
  EXPECT_EQ(outcome.cache_lookup, nullptr);
  EXPECT_EQ(outcome.validate_content, nullptr);
  EXPECT_THAT(Values(request_, "X-A"), ElementsAre("1"));
}

// --- forward-request ---

TEST(ApplyBackendTest, OverridesOnlyTheSettingsForwardRequestSets) {
  Route route;
  route.timeout = 300s;
  route.buffer_response = true;
  policy::ForwardRequest forward;
  forward.timeout = 7s;
  ApplyBackend(SectionOf({forward}), route);
  EXPECT_EQ(route.timeout, 7s);
  EXPECT_TRUE(route.buffer_response);
  EXPECT_FALSE(route.fail_on_error_status_code);
  EXPECT_FALSE(route.buffer_request_body);

  forward = {};
  forward.buffer_response = false;
  forward.fail_on_error_status_code = true;
  forward.buffer_request_body = true;
  ApplyBackend(SectionOf({forward}), route);
  EXPECT_EQ(route.timeout, 7s);
  EXPECT_FALSE(route.buffer_response);
  EXPECT_TRUE(route.fail_on_error_status_code);
  EXPECT_TRUE(route.buffer_request_body);
}

TEST(ApplyBackendTest, RoundsAMillisecondTimeoutUpToWholeSecondsOfAtLeastOne) {
  auto timeout_for = [](std::chrono::milliseconds timeout) {
    Route route;
    policy::ForwardRequest forward;
    forward.timeout = timeout;
    ApplyBackend(SectionOf({forward}), route);
    return route.timeout;
  };
  EXPECT_EQ(timeout_for(1500ms), 2s);
  EXPECT_EQ(timeout_for(2000ms), 2s);
  EXPECT_EQ(timeout_for(10ms), 1s);
}

TEST(ApplyBackendTest, LeavesTheRouteAsItIsWithoutForwardRequest) {
  Route route;
  ApplyBackend(policy::Section{}, route);
  EXPECT_EQ(route.timeout, 300s);
  EXPECT_TRUE(route.buffer_response);
}

// --- outbound ---

TEST(ApplyOutboundHeadersTest, AppliesTheSetHeaderStepsInOrder) {
  http::fields response;
  response.set("Server", "backend");
  response.set("X-Powered-By", "php");
  ApplyOutboundHeaders(SectionOf({policy::SetHeader{"X-Powered-By", ExistsAction::kDelete, {}},
                                  policy::CacheStore{60s},
                                  policy::SetHeader{"Server", ExistsAction::kOverride, {"gw"}},
                                  policy::SetHeader{"Server", ExistsAction::kAppend, {"edge"}}}),
                       response);
  EXPECT_THAT(Values(response, "X-Powered-By"), IsEmpty());
  EXPECT_THAT(Values(response, "Server"), ElementsAre("gw", "edge"));
}

TEST(FindCacheStoreTest, FindsTheCacheStoreStepOrNone) {
  const policy::Section with = SectionOf(
      {policy::SetHeader{"X-A", ExistsAction::kOverride, {"1"}}, policy::CacheStore{90s}});
  ASSERT_NE(FindCacheStore(with), nullptr);
  EXPECT_EQ(FindCacheStore(with)->duration, 90s);
  EXPECT_EQ(FindCacheStore(SectionOf({policy::SetHeader{"X-A", ExistsAction::kOverride, {"1"}}})),
            nullptr);
}

// --- The cache key ---

std::string KeyOf(std::string_view target, const policy::CacheLookup& lookup = {},
                  const http::fields& request = {}, const std::string& api = "orders") {
  return CacheKey(api, target, request, lookup);
}

TEST(CacheKeyTest, SeparatesApisAndPaths) {
  EXPECT_EQ(KeyOf("/orders/1"), KeyOf("/orders/1"));
  EXPECT_NE(KeyOf("/orders/1"), KeyOf("/orders/2"));
  EXPECT_NE(KeyOf("/orders/1", {}, {}, "orders"), KeyOf("/orders/1", {}, {}, "archive"));
}

TEST(CacheKeyTest, VariesByTheWholeQueryWhenNoParameterIsListed) {
  EXPECT_NE(KeyOf("/orders"), KeyOf("/orders?page=2"));
  EXPECT_NE(KeyOf("/orders?page=1"), KeyOf("/orders?page=2"));
}

TEST(CacheKeyTest, VariesOnlyByTheListedQueryParameters) {
  const policy::CacheLookup lookup{{}, {"page", "size"}};
  EXPECT_EQ(KeyOf("/orders?page=1&size=10&utm=a", lookup),
            KeyOf("/orders?utm=b&size=10&page=1", lookup));
  EXPECT_NE(KeyOf("/orders?page=1&size=10", lookup), KeyOf("/orders?page=2&size=10", lookup));
  EXPECT_NE(KeyOf("/orders?page=1&size=10", lookup), KeyOf("/orders?page=1&size=20", lookup));
}

// Decoded values may hold "&" and "=": two different queries must never share a cache entry.
TEST(CacheKeyTest, KeepsQueryValuesThatHoldSeparatorsApart) {
  const policy::CacheLookup lookup{{}, {"page", "size"}};
  EXPECT_NE(KeyOf("/orders?page=1%26size%3D2&size=", lookup),
            KeyOf("/orders?page=1&size=2%26size%3D", lookup));
}

TEST(CacheKeyTest, VariesByTheListedHeadersOnly) {
  const policy::CacheLookup lookup{{"Accept"}, {}};
  http::fields json, csv, json_with_other;
  json.set(http::field::accept, "application/json");
  csv.set(http::field::accept, "text/csv");
  json_with_other.set(http::field::accept, "application/json");
  json_with_other.set("X-Trace", "abc");
  EXPECT_NE(KeyOf("/orders", lookup, json), KeyOf("/orders", lookup, csv));
  EXPECT_EQ(KeyOf("/orders", lookup, json), KeyOf("/orders", lookup, json_with_other));
  EXPECT_EQ(KeyOf("/orders", {}, json), KeyOf("/orders", {}, csv)) << "Accept is not listed";
}

// Requests whose repeated header lines differ ("a, b" against "a, c") get different entries.
TEST(CacheKeyTest, VariesByEveryLineOfARepeatedHeader) {
  const policy::CacheLookup lookup{{"Accept"}, {}};
  http::fields first, second;
  for (auto [fields, value] : {std::pair{&first, "b"}, std::pair{&second, "c"}}) {
    fields->insert(http::field::accept, "a");
    fields->insert(http::field::accept, value);
  }
  EXPECT_NE(KeyOf("/orders", lookup, first), KeyOf("/orders", lookup, second));
}

// --- Streams per subscription ---

TEST(SubscriptionStreamsTest, OpensUpToTheLimitAndAgainAfterOneCloses) {
  SubscriptionStreams streams;
  EXPECT_TRUE(streams.TryOpen("team", 2));
  EXPECT_TRUE(streams.TryOpen("team", 2));
  EXPECT_FALSE(streams.TryOpen("team", 2));
  EXPECT_TRUE(streams.TryOpen("other", 2)) << "each subscription counts apart";
  streams.Close("team");
  EXPECT_TRUE(streams.TryOpen("team", 2));
  EXPECT_FALSE(streams.TryOpen("team", 2));
}

TEST(SubscriptionStreamsTest, OpensWithoutLimitWhenTheLimitIsZero) {
  SubscriptionStreams streams;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(streams.TryOpen("team", 0));
}

TEST(SubscriptionStreamsTest, ARefusedOpenCountsNothing) {
  SubscriptionStreams streams;
  ASSERT_TRUE(streams.TryOpen("team", 1));
  EXPECT_FALSE(streams.TryOpen("team", 1));
  EXPECT_FALSE(streams.TryOpen("team", 1));
  streams.Close("team");
  EXPECT_TRUE(streams.TryOpen("team", 1)) << "one close frees the one open stream";
}

}  // namespace
}  // namespace apim::dataplane
