// Admission: what the gateway decides about a request before any backend is contacted, as a
// value (forward it, and how, or the answer to send), from the request and a compiled snapshot.
#include "dataplane/exchange/admission.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/str_cat.h"
#include "dataplane/admin/metrics.h"
#include "tests/support/snapshots.h"

namespace apim::dataplane {

// How gtest shows a decision when an expectation on it fails.
void PrintTo(const Answer& answer, std::ostream* out) {
  *out << "answer " << answer.response.result_int() << ": " << answer.response.body();
}
void PrintTo(const Admission& admission, std::ostream* out) {
  *out << "admission to " << (admission.route ? admission.route->api : "(no route)");
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using namespace std::chrono_literals;
using namespace ::apim::testing;  // The snapshot builders.

MATCHER(IsAdmitted, "is admitted") { return std::holds_alternative<Admission>(arg); }

// An answer with this status and the problem type "urn:apim:problem:<type>".
MATCHER_P2(IsProblem, status, type, "") {
  const auto* answer = std::get_if<Answer>(&arg);
  return answer != nullptr && answer->response.result_int() == static_cast<unsigned>(status) &&
         answer->response.body().find(StrCat("\"type\":\"urn:apim:problem:", type, "\"")) !=
             std::string::npos;
}

http::request_header<> Request(http::verb method, std::string_view target) {
  http::request_header<> request;
  request.method(method);
  request.target(target);
  request.version(11);
  request.set(http::field::host, "gw.example.com");
  return request;
}

http::request_header<> Get(std::string_view target) { return Request(http::verb::get, target); }

class AdmissionTest : public ::testing::Test {
 protected:
  // Compiles `snapshot` and keeps it for the test's life, as an exchange keeps its snapshot.
  const RuntimeSnapshot* Serve(v1::Snapshot snapshot) {
    auto compiled = RuntimeSnapshot::Compile(std::move(snapshot));
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    if (!compiled.ok()) return nullptr;
    snapshot_ = *std::move(compiled);
    return snapshot_.get();
  }

  AdmissionDecision AdmitTo(const RuntimeSnapshot* snapshot, http::request_header<>& request,
                            bool has_body = false) {
    return Admit(AdmissionRequest{request, has_body, client_ip_, &logged_headers_}, snapshot,
                 services_, now_);
  }
  AdmissionDecision AdmitTo(const RuntimeSnapshot* snapshot, http::request_header<>&& request,
                            bool has_body = false) {
    return AdmitTo(snapshot, request, has_body);
  }

  const Route& RouteOf(const RuntimeSnapshot* snapshot, std::string_view path) {
    const Route* route = snapshot->routes.Match("gw.example.com", path);
    if (route == nullptr) throw std::logic_error(StrCat("no route for ", path));
    return *route;
  }

  Metrics metrics_;
  RateLimiter rate_limiter_{metrics_};
  SubscriptionStreams subscription_streams_;
  ResponseCache cache_{1 << 20};
  std::atomic<int64_t> active_streams_{0};
  std::atomic<uint64_t> streams_refused_{0};
  AdmissionServices services_{rate_limiter_, subscription_streams_, cache_, active_streams_,
                              streams_refused_};
  const std::string client_ip_ = "203.0.113.7";
  std::vector<std::pair<std::string, std::string>> logged_headers_;
  const std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::now();
  std::shared_ptr<const RuntimeSnapshot> snapshot_;
};

// --- Routing ---

TEST_F(AdmissionTest, AnswersNotFoundSayingSoWhileTheWorkerHasNoConfiguration) {
  AdmissionDecision decision = AdmitTo(nullptr, Get("/orders/1"));
  ASSERT_THAT(decision, IsProblem(404, "no-api"));
  EXPECT_THAT(std::get<Answer>(decision).error, HasSubstr("no configuration"));
  EXPECT_EQ(std::get<Answer>(decision).response[http::field::content_type],
            "application/problem+json");
}

TEST_F(AdmissionTest, AnswersNotFoundForAPathNoApiServes) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AdmissionDecision decision = AdmitTo(Serve(snapshot), Get("/ordersx/1"));
  ASSERT_THAT(decision, IsProblem(404, "no-api"));
  const Answer& answer = std::get<Answer>(decision);
  EXPECT_THAT(answer.error, HasSubstr("/ordersx/1"));
  EXPECT_THAT(answer.error, Not(HasSubstr("no configuration")));
  EXPECT_EQ(answer.api, "");
  EXPECT_EQ(answer.diagnostics, nullptr);
}

TEST_F(AdmissionTest, RefusesATargetWithEncodedDotSegments) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "root", "/");
  EXPECT_THAT(AdmitTo(Serve(snapshot), Get("/a/%2e%2e/b")), IsProblem(400, "bad-request-target"));
  EXPECT_THAT(AdmitTo(nullptr, Get("/a/%2E%2e%2fsecret")), IsProblem(400, "bad-request-target"));
}

TEST_F(AdmissionTest, AdmitsARequestOnTheRouteOfItsApiAsTheSnapshotHasIt) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "users", "/users");
  const RuntimeSnapshot* served = Serve(snapshot);
  AdmissionDecision decision = AdmitTo(served, Get("/orders/1?x=1"));
  ASSERT_THAT(decision, IsAdmitted());
  const Admission& admission = std::get<Admission>(decision);
  EXPECT_EQ(admission.route, &RouteOf(served, "/orders"));
  EXPECT_EQ(admission.adjusted_route, nullptr);
  EXPECT_EQ(admission.subscription, nullptr);
  EXPECT_EQ(admission.validate_content, nullptr);
  EXPECT_EQ(admission.cache_key, "");
}

TEST_F(AdmissionTest, DropsTheFragmentFromTheTarget) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  http::request_header<> request = Get("/orders/1?a=1#top");
  ASSERT_THAT(AdmitTo(Serve(snapshot), request), IsAdmitted());
  EXPECT_EQ(request.target(), "/orders/1?a=1");
}

// --- Subscription keys ---

class SubscriptionKeyTest : public AdmissionTest {
 protected:
  // "orders" and "users" require a key; "team" opens orders, "other" opens users only.
  SubscriptionKeyTest() {
    v1::Snapshot snapshot = SnapshotOn(StreamingTier());
    AddApi(snapshot, "orders", "/orders").set_subscription_required(true);
    AddApi(snapshot, "users", "/users").set_subscription_required(true);
    AddApi(snapshot, "public", "/public");
    AddSubscription(snapshot, "team", "team-key", {"orders"});
    AddSubscription(snapshot, "other", "other-key", {"users"});
    served_ = Serve(snapshot);
  }

  // The subscription `request` is admitted under: its name, "(none)", or "(refused)".
  std::string SubscriptionOf(http::request_header<>& request) {
    AdmissionDecision decision = AdmitTo(served_, request);
    const auto* admission = std::get_if<Admission>(&decision);
    if (admission == nullptr) return "(refused)";
    return admission->subscription ? admission->subscription->name : "(none)";
  }

  const RuntimeSnapshot* served_ = nullptr;
};

TEST_F(SubscriptionKeyTest, RefusesARequestWithoutAKey) {
  AdmissionDecision decision = AdmitTo(served_, Get("/orders/1"));
  ASSERT_THAT(decision, IsProblem(401, "subscription-key-missing"));
  EXPECT_EQ(std::get<Answer>(decision).api, "orders");
  EXPECT_THAT(std::get<Answer>(decision).error, HasSubstr("Ocp-Apim-Subscription-Key"));
}

TEST_F(SubscriptionKeyTest, RefusesAnUnknownKey) {
  http::request_header<> request = Get("/orders/1");
  request.set("Ocp-Apim-Subscription-Key", "not-a-key");
  EXPECT_THAT(AdmitTo(served_, request), IsProblem(401, "subscription-key-invalid"));
}

TEST_F(SubscriptionKeyTest, RefusesAKeyOfASubscriptionToAnotherApi) {
  http::request_header<> request = Get("/orders/1");
  request.set("Ocp-Apim-Subscription-Key", "other-key");
  AdmissionDecision decision = AdmitTo(served_, request);
  ASSERT_THAT(decision, IsProblem(401, "subscription-key-invalid"));
  EXPECT_THAT(std::get<Answer>(decision).error, HasSubstr("\"orders\""));
}

TEST_F(SubscriptionKeyTest, AcceptsTheKeyInTheHeaderAndTakesItOut) {
  http::request_header<> request = Get("/orders/1?a=1");
  request.set("ocp-apim-subscription-key", "team-key");
  EXPECT_EQ(SubscriptionOf(request), "team");
  EXPECT_EQ(request.count("Ocp-Apim-Subscription-Key"), 0u);
  EXPECT_EQ(request.target(), "/orders/1?a=1");
}

TEST_F(SubscriptionKeyTest, AcceptsTheKeyInTheQueryAndTakesItOut) {
  http::request_header<> request = Get("/orders/1?a=1&subscription-key=team-key&b=2");
  EXPECT_EQ(SubscriptionOf(request), "team");
  EXPECT_EQ(request.target(), "/orders/1?a=1&b=2");
}

TEST_F(SubscriptionKeyTest, PrefersTheHeaderToTheQueryAndTakesOutBoth) {
  http::request_header<> request = Get("/orders/1?subscription-key=other-key");
  request.set("Ocp-Apim-Subscription-Key", "team-key");
  EXPECT_EQ(SubscriptionOf(request), "team");
  EXPECT_EQ(request.target(), "/orders/1");
  EXPECT_EQ(request.count("Ocp-Apim-Subscription-Key"), 0u);
}

TEST_F(SubscriptionKeyTest, TakesAKeyOutEvenForAnApiThatRequiresNone) {
  http::request_header<> request = Get("/public/1?subscription-key=team-key&q=x");
  request.set("Ocp-Apim-Subscription-Key", "anything");
  EXPECT_EQ(SubscriptionOf(request), "(none)");
  EXPECT_EQ(request.target(), "/public/1?q=x");
  EXPECT_EQ(request.count("Ocp-Apim-Subscription-Key"), 0u);
}

TEST_F(SubscriptionKeyTest, TakesTheKeyOutOfARefusedRequestToo) {
  http::request_header<> request = Get("/users/1?subscription-key=team-key");
  ASSERT_THAT(AdmitTo(served_, request), IsProblem(401, "subscription-key-invalid"));
  EXPECT_EQ(request.target(), "/users/1") << "the access log must not see it either";
}

// --- Tier rules and stream limits ---

TEST_F(AdmissionTest, RefusesAStreamOnATierWithoutLongLivedConnections) {
  v1::Snapshot snapshot = SnapshotOn(ConsumptionTier());
  AddApi(snapshot, "orders", "/orders");
  const RuntimeSnapshot* served = Serve(snapshot);

  http::request_header<> sse = Get("/orders/feed");
  sse.set(http::field::accept, "application/json, TEXT/EVENT-STREAM;q=0.9");
  AdmissionDecision decision = AdmitTo(served, sse);
  ASSERT_THAT(decision, IsProblem(501, "long-lived-connections-not-supported"));
  EXPECT_THAT(std::get<Answer>(decision).error, HasSubstr("\"consumption\""));
  EXPECT_EQ(std::get<Answer>(decision).api, "orders");

  http::request_header<> websocket = Get("/orders/socket");
  websocket.set(http::field::connection, "Upgrade");
  websocket.set(http::field::upgrade, "websocket");
  EXPECT_THAT(AdmitTo(served, websocket), IsProblem(501, "long-lived-connections-not-supported"));

  EXPECT_THAT(AdmitTo(served, Get("/orders/1")), IsAdmitted());
  EXPECT_EQ(streams_refused_.load(), 0u) << "a tier refusal is not a stream-limit refusal";
}

// An SSE API on the consumption tier never reaches admission: the snapshot does not compile
// (RouteTableTest.RefusesAnInvalidSnapshot), so only a request's own ask is refused here.

class StreamLimitTest : public AdmissionTest {
 protected:
  // A tier of 2 streams; "events" is an SSE API, "orders" an ordinary one.
  StreamLimitTest() {
    v1::Tier tier = StreamingTier();
    tier.set_max_concurrent_streams(2);
    v1::Snapshot snapshot = SnapshotOn(tier);
    AddApi(snapshot, "events", "/events").set_sse(true);
    AddApi(snapshot, "orders", "/orders");
    served_ = Serve(snapshot);
  }

  const RuntimeSnapshot* served_ = nullptr;
};

TEST_F(StreamLimitTest, AdmitsStreamsBelowTheTiersLimit) {
  active_streams_ = 1;
  EXPECT_THAT(AdmitTo(served_, Get("/events")), IsAdmitted());
  EXPECT_EQ(streams_refused_.load(), 0u);
}

TEST_F(StreamLimitTest, RefusesStreamsAtTheTiersLimitAndCountsThem) {
  active_streams_ = 2;
  AdmissionDecision decision = AdmitTo(served_, Get("/events"));
  ASSERT_THAT(decision, IsProblem(503, "too-many-streams"));
  EXPECT_THAT(std::get<Answer>(decision).error, HasSubstr("2 concurrent streams"));
  EXPECT_EQ(streams_refused_.load(), 1u);

  http::request_header<> asks_for_stream = Get("/orders/feed");
  asks_for_stream.set(http::field::accept, "text/event-stream");
  EXPECT_THAT(AdmitTo(served_, asks_for_stream), IsProblem(503, "too-many-streams"));
  EXPECT_EQ(streams_refused_.load(), 2u);
}

TEST_F(StreamLimitTest, AdmitsOrdinaryRequestsAtTheTiersLimit) {
  active_streams_ = 2;
  EXPECT_THAT(AdmitTo(served_, Get("/orders/1")), IsAdmitted());
  EXPECT_EQ(streams_refused_.load(), 0u);
}

class SubscriptionStreamTest : public AdmissionTest {
 protected:
  // "team" may hold one stream; "events" is an SSE API and "orders" an ordinary one, both
  // requiring a key. "events" refuses requests without X-Ok; the tier allows `tier_streams`.
  explicit SubscriptionStreamTest(uint32_t tier_streams = 0) {
    v1::Tier tier = StreamingTier();
    tier.set_max_concurrent_streams(tier_streams);
    v1::Snapshot snapshot = SnapshotOn(tier);
    AddApi(snapshot, "events", "/events").set_sse(true);
    snapshot.mutable_apis(0)->set_subscription_required(true);
    AddApi(snapshot, "orders", "/orders").set_subscription_required(true);
    AddPolicy(snapshot, "api:events",
              R"(<policies><inbound><check-header name="X-Ok"/></inbound></policies>)");
    AddSubscription(snapshot, "team", "team-key", {"events", "orders"}, 1);
    served_ = Serve(snapshot);
  }

  AdmissionDecision AdmitWithKey(std::string_view target, bool passes_policy = true) {
    http::request_header<> request = Get(target);
    request.set("Ocp-Apim-Subscription-Key", "team-key");
    if (passes_policy) request.set("X-Ok", "1");
    return AdmitTo(served_, request);
  }

  const RuntimeSnapshot* served_ = nullptr;
};

TEST_F(SubscriptionStreamTest, HoldsASubscriptionsStreamSlotWhileTheAdmissionLives) {
  std::optional<AdmissionDecision> first = AdmitWithKey("/events");
  ASSERT_THAT(*first, IsAdmitted());

  AdmissionDecision second = AdmitWithKey("/events");
  ASSERT_THAT(second, IsProblem(429, "too-many-subscription-streams"));
  EXPECT_THAT(std::get<Answer>(second).error, HasSubstr("\"team\""));
  EXPECT_EQ(streams_refused_.load(), 1u);

  first.reset();
  EXPECT_THAT(AdmitWithKey("/events"), IsAdmitted());
}

TEST_F(SubscriptionStreamTest, KeepsTheSlotWhenTheAdmissionIsMoved) {
  AdmissionDecision decision = AdmitWithKey("/events");
  ASSERT_THAT(decision, IsAdmitted());
  std::optional<Admission> moved(std::get<Admission>(std::move(decision)));
  EXPECT_THAT(AdmitWithKey("/events"), IsProblem(429, "too-many-subscription-streams"));
  moved.reset();
  EXPECT_THAT(AdmitWithKey("/events"), IsAdmitted());
}

TEST_F(SubscriptionStreamTest, TakesNoSlotForARequestThatIsNotAStream) {
  AdmissionDecision stream = AdmitWithKey("/events");
  ASSERT_THAT(stream, IsAdmitted());
  EXPECT_THAT(AdmitWithKey("/orders/1"), IsAdmitted());
  EXPECT_THAT(AdmitWithKey("/orders/2"), IsAdmitted());
}

TEST_F(SubscriptionStreamTest, GivesTheSlotBackWhenThePolicyAnswersInstead) {
  EXPECT_THAT(AdmitWithKey("/events", /*passes_policy=*/false), IsProblem(401, "check-header"));
  EXPECT_THAT(AdmitWithKey("/events"), IsAdmitted());
}

class SubscriptionStreamAtTierLimitTest : public SubscriptionStreamTest {
 protected:
  SubscriptionStreamAtTierLimitTest() : SubscriptionStreamTest(/*tier_streams=*/1) {}
};

TEST_F(SubscriptionStreamAtTierLimitTest, GivesTheSlotBackWhenTheTiersLimitRefusesTheStream) {
  active_streams_ = 1;
  EXPECT_THAT(AdmitWithKey("/events"), IsProblem(503, "too-many-streams"));
  active_streams_ = 0;
  EXPECT_THAT(AdmitWithKey("/events"), IsAdmitted());
}

// --- The inbound policy ---

TEST_F(AdmissionTest, RemovesHopByHopHeadersBeforeTheInboundPolicyRuns) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddPolicy(snapshot, "api:orders", R"(<policies><inbound>
      <set-header name="X-Gateway-Secret" exists-action="override"><value>s3cret</value></set-header>
    </inbound></policies>)");
  http::request_header<> request = Get("/orders/1");
  request.set(http::field::connection, "keep-alive, X-Gateway-Secret");
  request.set(http::field::keep_alive, "timeout=5");
  request.set(http::field::te, "trailers");
  request.set(http::field::proxy_authorization, "Basic eA==");
  request.set("X-End-To-End", "kept");
  ASSERT_THAT(AdmitTo(Serve(snapshot), request), IsAdmitted());
  EXPECT_EQ(request["X-Gateway-Secret"], "s3cret") << "named in Connection, but set after";
  EXPECT_EQ(request.count(http::field::connection), 0u);
  EXPECT_EQ(request.count(http::field::keep_alive), 0u);
  EXPECT_EQ(request.count(http::field::te), 0u);
  EXPECT_EQ(request.count(http::field::proxy_authorization), 0u);
  EXPECT_EQ(request["X-End-To-End"], "kept");
  EXPECT_EQ(request[http::field::host], "gw.example.com");
}

TEST_F(AdmissionTest, ChecksHeadersAsTheBackendWouldGetThem) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddPolicy(snapshot, "api:orders", R"(<policies><inbound>
      <check-header name="X-Internal" failed-check-httpcode="403"
                    failed-check-error-message="internal callers only"/>
    </inbound></policies>)");
  const RuntimeSnapshot* served = Serve(snapshot);
  http::request_header<> request = Get("/orders/1");
  request.set(http::field::connection, "X-Internal");
  request.set("X-Internal", "yes");
  AdmissionDecision decision = AdmitTo(served, request);
  ASSERT_THAT(decision, IsProblem(403, "check-header"));
  const Answer& answer = std::get<Answer>(decision);
  EXPECT_THAT(answer.response.body(), HasSubstr("internal callers only"));
  EXPECT_EQ(answer.api, "orders");
  EXPECT_EQ(answer.diagnostics, &RouteOf(served, "/orders").diagnostics);

  http::request_header<> end_to_end = Get("/orders/1");
  end_to_end.set("X-Internal", "yes");
  EXPECT_THAT(AdmitTo(served, end_to_end), IsAdmitted());
}

TEST_F(AdmissionTest, AnswersWithThePolicysReturnResponseAndTheApisDiagnostics) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  v1::DiagnosticSetting& diagnostics = *snapshot.add_diagnostics();
  diagnostics.set_scope("api:orders");
  diagnostics.add_headers("X-Request-Id");
  AddPolicy(snapshot, "api:orders", R"(<policies><inbound><return-response>
      <set-status code="202" reason="Queued"/>
      <set-header name="X-From" exists-action="override"><value>policy</value></set-header>
      <set-body>queued</set-body>
    </return-response></inbound></policies>)");
  const RuntimeSnapshot* served = Serve(snapshot);
  http::request_header<> request = Get("/orders/1");
  request.set("X-Request-Id", "req-1");
  AdmissionDecision decision = AdmitTo(served, request);
  ASSERT_TRUE(std::holds_alternative<Answer>(decision));
  const Answer& answer = std::get<Answer>(decision);
  EXPECT_EQ(answer.response.result_int(), 202u);
  EXPECT_EQ(answer.response.reason(), "Queued");
  EXPECT_EQ(answer.response["X-From"], "policy");
  EXPECT_EQ(answer.response.body(), "queued");
  EXPECT_EQ(answer.error, "");
  EXPECT_EQ(answer.api, "orders");
  EXPECT_EQ(answer.diagnostics, &RouteOf(served, "/orders").diagnostics);
  EXPECT_THAT(logged_headers_, ElementsAre(Pair("X-Request-Id", "req-1")));
}

TEST_F(AdmissionTest, NeverLogsTheSubscriptionKeyEvenWhenTheDiagnosticSettingNamesIt) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  v1::DiagnosticSetting& diagnostics = *snapshot.add_diagnostics();
  diagnostics.set_scope("global");
  diagnostics.add_headers("Ocp-Apim-Subscription-Key");
  diagnostics.add_headers("X-Request-Id");
  http::request_header<> request = Get("/orders/1");
  request.set("Ocp-Apim-Subscription-Key", "secret");
  request.set("X-Request-Id", "req-1");
  ASSERT_THAT(AdmitTo(Serve(snapshot), request), IsAdmitted());
  EXPECT_THAT(logged_headers_, ElementsAre(Pair("X-Request-Id", "req-1")));
}

TEST_F(AdmissionTest, AnswersTooManyRequestsPastTheRateLimitsCalls) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddPolicy(
      snapshot, "api:orders",
      R"(<policies><inbound><rate-limit calls="2" renewal-period="60"/></inbound></policies>)");
  const RuntimeSnapshot* served = Serve(snapshot);
  EXPECT_THAT(AdmitTo(served, Get("/orders/1")), IsAdmitted());
  EXPECT_THAT(AdmitTo(served, Get("/orders/2")), IsAdmitted());
  AdmissionDecision third = AdmitTo(served, Get("/orders/3"));
  ASSERT_THAT(third, IsProblem(429, "rate-limited"));
  EXPECT_FALSE(std::get<Answer>(third).response[http::field::retry_after].empty());
}

TEST_F(AdmissionTest, HandsOverTheQuotasToChargeWhetherTheCallIsForwardedOrAnswered) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddApi(snapshot, "answered", "/answered");
  const std::string quotas = R"(<quota calls="10" renewal-period="60"/>
      <quota bandwidth="4" renewal-period="60"/>)";
  AddPolicy(snapshot, "api:orders", "<policies><inbound>" + quotas + "</inbound></policies>");
  AddPolicy(snapshot, "api:answered",
            "<policies><inbound>" + quotas +
                "<return-response><set-status code=\"204\"/></return-response>"
                "</inbound></policies>");
  const RuntimeSnapshot* served = Serve(snapshot);
  // Only the quota with a bandwidth is charged, in bytes; an answer's bytes count like a
  // response's.
  AdmissionDecision forwarded = AdmitTo(served, Get("/orders/1"));
  ASSERT_THAT(forwarded, IsAdmitted());
  ASSERT_EQ(std::get<Admission>(forwarded).bandwidth.size(), 1u);
  EXPECT_EQ(std::get<Admission>(forwarded).bandwidth[0].bytes, 4096u);
  AdmissionDecision answered = AdmitTo(served, Get("/answered/1"));
  ASSERT_TRUE(std::holds_alternative<Answer>(answered));
  EXPECT_EQ(std::get<Answer>(answered).response.result_int(), 204u);
  EXPECT_EQ(std::get<Answer>(answered).bandwidth.size(), 1u);
}

// --- Settings adjusted for one request ---

TEST_F(AdmissionTest, AdjustsTheRouteForOneRequestWithTheBackendSectionsForwardRequest) {
  v1::Snapshot snapshot = SnapshotOn(StreamingTier());
  AddApi(snapshot, "orders", "/orders");
  AddPolicy(snapshot, "api:orders", R"(<policies><backend>
      <forward-request timeout="7" buffer-response="false" fail-on-error-status-code="true"/>
    </backend></policies>)");
  const RuntimeSnapshot* served = Serve(snapshot);
  AdmissionDecision decision = AdmitTo(served, Get("/orders/1"));
  ASSERT_THAT(decision, IsAdmitted());
  const Admission& admission = std::get<Admission>(decision);
  ASSERT_NE(admission.adjusted_route, nullptr);
  EXPECT_EQ(admission.route, admission.adjusted_route.get());
  EXPECT_EQ(admission.route->api, "orders");
  EXPECT_EQ(admission.route->timeout, 7s);
  EXPECT_FALSE(admission.route->buffer_response);
  EXPECT_TRUE(admission.route->fail_on_error_status_code);

  const Route& shared = RouteOf(served, "/orders");
  EXPECT_EQ(shared.timeout, 300s) << "the snapshot's route is shared by every request";
  EXPECT_TRUE(shared.buffer_response);
  EXPECT_FALSE(shared.fail_on_error_status_code);
}

class ValidateContentTest : public AdmissionTest {
 protected:
  ValidateContentTest() {
    v1::Snapshot snapshot = SnapshotOn(StreamingTier());
    AddApi(snapshot, "orders", "/orders");
    AddPolicy(snapshot, "api:orders", R"(<policies><inbound>
        <validate-content unspecified-content-type-action="prevent" max-size="1024"
                          size-exceeded-action="prevent"/>
      </inbound></policies>)");
    served_ = Serve(snapshot);
  }

  const RuntimeSnapshot* served_ = nullptr;
};

TEST_F(ValidateContentTest, BuffersTheBodyOfARequestThatHasOne) {
  http::request_header<> request = Request(http::verb::post, "/orders");
  request.set(http::field::content_type, "application/json");
  AdmissionDecision decision = AdmitTo(served_, request, /*has_body=*/true);
  ASSERT_THAT(decision, IsAdmitted());
  const Admission& admission = std::get<Admission>(decision);
  ASSERT_NE(admission.validate_content, nullptr);
  EXPECT_EQ(admission.validate_content->max_size, 1024u);
  EXPECT_FALSE(admission.content_type_missing);
  ASSERT_NE(admission.adjusted_route, nullptr);
  EXPECT_EQ(admission.route, admission.adjusted_route.get());
  EXPECT_TRUE(admission.route->buffer_request_body);
  EXPECT_FALSE(RouteOf(served_, "/orders").buffer_request_body);
}

TEST_F(ValidateContentTest, NotesABodyWithoutAContentType) {
  AdmissionDecision decision =
      AdmitTo(served_, Request(http::verb::post, "/orders"), /*has_body=*/true);
  ASSERT_THAT(decision, IsAdmitted());
  EXPECT_TRUE(std::get<Admission>(decision).content_type_missing);
}

TEST_F(ValidateContentTest, HasNothingToValidateWithoutABody) {
  AdmissionDecision decision = AdmitTo(served_, Get("/orders/1"));
  ASSERT_THAT(decision, IsAdmitted());
  const Admission& admission = std::get<Admission>(decision);
  EXPECT_EQ(admission.validate_content, nullptr);
  EXPECT_FALSE(admission.route->buffer_request_body);
}

// --- The response cache ---

class CacheLookupTest : public AdmissionTest {
 protected:
  // "orders" looks responses up by path, query and Accept; "plain" has no cache setting.
  CacheLookupTest() {
    v1::Snapshot snapshot = SnapshotOn(StreamingTier());
    AddApi(snapshot, "orders", "/orders");
    AddApi(snapshot, "plain", "/plain");
    v1::CacheSetting& cache = *snapshot.add_caches();
    cache.set_scope("api:orders");
    cache.set_enabled(true);
    const std::string policy = R"(<policies>
        <inbound><cache-lookup><vary-by-header>Accept</vary-by-header></cache-lookup></inbound>
        <outbound><cache-store duration="60"/></outbound>
      </policies>)";
    AddPolicy(snapshot, "api:orders", policy);
    AddPolicy(snapshot, "api:plain", policy);
    served_ = Serve(snapshot);
  }

  // The cache key admission gives `request`, or "" (a failure) when it was answered.
  std::string CacheKeyOf(http::request_header<>&& request) {
    AdmissionDecision decision = AdmitTo(served_, request);
    EXPECT_THAT(decision, IsAdmitted());
    const auto* admission = std::get_if<Admission>(&decision);
    return admission ? admission->cache_key : "";
  }

  void StoreAt(const std::string& key, std::chrono::seconds age) {
    CachedResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", "application/json"}};
    response.body = R"({"id":1})";
    response.stored = now_ - age;
    response.expires = now_ - age + 60s;
    cache_.Store(key, std::move(response));
  }

  const RuntimeSnapshot* served_ = nullptr;
};

TEST_F(CacheLookupTest, AnswersAStoredResponseWithItsAge) {
  const std::string key = CacheKeyOf(Get("/orders/1"));
  ASSERT_NE(key, "") << "a miss names the entry cache-store may fill";
  StoreAt(key, 5s);

  AdmissionDecision decision = AdmitTo(served_, Get("/orders/1"));
  ASSERT_TRUE(std::holds_alternative<Answer>(decision));
  const Answer& answer = std::get<Answer>(decision);
  EXPECT_EQ(answer.response.result_int(), 200u);
  EXPECT_EQ(answer.response["X-Cache"], "HIT");
  EXPECT_EQ(answer.response[http::field::age], "5");
  EXPECT_EQ(answer.response[http::field::content_type], "application/json");
  EXPECT_EQ(answer.response.body(), R"({"id":1})");
  EXPECT_EQ(answer.response[http::field::content_length], "8");
  EXPECT_EQ(answer.error, "") << "a cache hit is no error";
  EXPECT_EQ(answer.api, "orders");
  EXPECT_EQ(answer.diagnostics, &RouteOf(served_, "/orders").diagnostics);
}

TEST_F(CacheLookupTest, MissesForAnotherVariantOfTheRequest) {
  StoreAt(CacheKeyOf(Get("/orders/1")), 1s);
  EXPECT_THAT(AdmitTo(served_, Get("/orders/2")), IsAdmitted());
  EXPECT_THAT(AdmitTo(served_, Get("/orders/1?page=2")), IsAdmitted());
  http::request_header<> other_accept = Get("/orders/1");
  other_accept.set(http::field::accept, "text/csv");
  EXPECT_THAT(AdmitTo(served_, other_accept), IsAdmitted());
}

TEST_F(CacheLookupTest, LeavesTheSubscriptionKeyOutOfTheCacheKey) {
  EXPECT_EQ(CacheKeyOf(Get("/orders/1?subscription-key=secret")), CacheKeyOf(Get("/orders/1")));
}

TEST_F(CacheLookupTest, LooksUpOnlyGetRequests) {
  EXPECT_EQ(CacheKeyOf(Request(http::verb::post, "/orders/1")), "");
  EXPECT_EQ(CacheKeyOf(Request(http::verb::head, "/orders/1")), "");
}

TEST_F(CacheLookupTest, LooksUpNothingForAnApiWithoutACacheSetting) {
  EXPECT_EQ(CacheKeyOf(Get("/plain/1")), "");
}

}  // namespace
}  // namespace apim::dataplane
