// The policy compiler: what each element compiles to, where errors point, how scopes inherit
// through <base/>, and which policies would break an SSE stream.
#include "common/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/str_cat.h"

namespace apim::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using namespace std::chrono_literals;

Document MustParse(std::string_view xml) {
  absl::StatusOr<Document> document = Parse(xml);
  EXPECT_TRUE(document.ok()) << document.status();
  return document.ok() ? *document : Document{};
}

// The single step of an inbound (or other) section, as type T.
template <typename T>
T OnlyStep(const Section& section) {
  EXPECT_EQ(section.steps.size(), 1u);
  if (section.steps.size() != 1 || !std::holds_alternative<T>(section.steps[0])) {
    ADD_FAILURE() << "expected one step of the requested type";
    return T{};
  }
  return std::get<T>(section.steps[0]);
}

template <typename T>
T Inbound(std::string_view policy) {
  return OnlyStep<T>(
      MustParse(StrCat("<policies><inbound>", policy, "</inbound></policies>")).inbound);
}

// The message must read "policy.xml: line N: ELEMENT: " and go on to mention `detail`.
void ExpectError(std::string_view xml, int line, std::string_view element,
                 std::string_view detail) {
  SCOPED_TRACE(xml);
  absl::StatusOr<Document> document = Parse(xml);
  ASSERT_FALSE(document.ok());
  EXPECT_EQ(document.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(document.status().message());
  EXPECT_THAT(message, StartsWith(StrCat("policy.xml: line ", line, ": ", element, ": ")));
  EXPECT_THAT(message, HasSubstr(detail));
}

void ExpectInboundError(std::string_view policy, std::string_view element,
                        std::string_view detail) {
  ExpectError(StrCat("<policies>\n<inbound>\n", policy, "\n</inbound>\n</policies>"), 3, element,
              detail);
}

// --- Documents and sections ---

TEST(PolicyTest, ParsesAnEmptyDocumentToEmptySections) {
  EXPECT_EQ(MustParse("<policies/>"), Document{});
  EXPECT_EQ(MustParse("<policies><inbound/><backend></backend><outbound>\n</outbound>"
                      "<on-error> </on-error></policies>"),
            Document{});
}

TEST(PolicyTest, PutsEachSectionsStepsInOrder) {
  Document document = MustParse(R"(<?xml version="1.0"?>
<!-- global policy -->
<policies>
  <inbound><base/><rate-limit calls="5" renewal-period="10"/><!-- note --></inbound>
  <backend><forward-request/></backend>
  <outbound><set-header name="X-A" exists-action="delete"/></outbound>
  <on-error><return-response><set-status code="500"/></return-response></on-error>
</policies>)");
  ASSERT_EQ(document.inbound.steps.size(), 2u);
  EXPECT_EQ(ElementName(document.inbound.steps[0]), "base");
  EXPECT_EQ(ElementName(document.inbound.steps[1]), "rate-limit");
  EXPECT_TRUE(document.inbound.has_base());
  EXPECT_EQ(OnlyStep<ForwardRequest>(document.backend), ForwardRequest{});
  EXPECT_FALSE(document.backend.has_base());
  EXPECT_EQ(OnlyStep<SetHeader>(document.outbound).exists_action, ExistsAction::kDelete);
  EXPECT_EQ(OnlyStep<ReturnResponse>(document.on_error).status, 500u);
}

TEST(PolicyTest, NamesEachStepAfterItsElement) {
  Document document = MustParse(R"(<policies>
  <inbound>
    <base/>
    <set-header name="X" exists-action="delete"/>
    <check-header name="X"/>
    <rate-limit calls="1" renewal-period="1"/>
    <rate-limit-by-key calls="1" renewal-period="1" counter-key="k"/>
    <return-response/>
    <cache-lookup/>
    <validate-content max-size="1"/>
    <quota calls="1" renewal-period="1"/>
    <quota-by-key bandwidth="1" renewal-period="1" counter-key="k"/>
  </inbound>
  <backend><forward-request/></backend>
  <outbound><cache-store duration="1"/></outbound>
</policies>)");
  std::vector<std::string_view> names;
  for (const Step& step : document.inbound.steps) names.push_back(ElementName(step));
  EXPECT_THAT(names, ElementsAre("base", "set-header", "check-header", "rate-limit",
                                 "rate-limit-by-key", "return-response", "cache-lookup",
                                 "validate-content", "quota", "quota-by-key"));
  EXPECT_EQ(ElementName(document.backend.steps[0]), "forward-request");
  EXPECT_EQ(ElementName(document.outbound.steps[0]), "cache-store");
}

// --- Each element with its attributes ---

TEST(PolicyTest, ParsesSetHeaderWithEachExistsActionAndItsValues) {
  EXPECT_EQ(Inbound<SetHeader>(R"(<set-header name="X-Trace"><value>a</value></set-header>)"),
            (SetHeader{"X-Trace", ExistsAction::kOverride, {"a"}}));
  EXPECT_EQ(Inbound<SetHeader>(R"(<set-header name="X" exists-action="override">
                                    <value>a</value><value> b c </value></set-header>)"),
            (SetHeader{"X", ExistsAction::kOverride, {"a", "b c"}}));
  EXPECT_EQ(Inbound<SetHeader>(
                R"(<set-header name="X" exists-action="skip"><value>v</value></set-header>)"),
            (SetHeader{"X", ExistsAction::kSkip, {"v"}}));
  EXPECT_EQ(Inbound<SetHeader>(
                R"(<set-header name="X" exists-action="append"><value>v</value></set-header>)"),
            (SetHeader{"X", ExistsAction::kAppend, {"v"}}));
  EXPECT_EQ(Inbound<SetHeader>(R"(<set-header name="X" exists-action="delete"/>)"),
            (SetHeader{"X", ExistsAction::kDelete, {}}));
  EXPECT_EQ(
      Inbound<SetHeader>(R"(<set-header name="X"><value><![CDATA[a<b]]></value></set-header>)"),
      (SetHeader{"X", ExistsAction::kOverride, {"a<b"}}));
}

TEST(PolicyTest, ParsesCheckHeaderWithDefaultsAndWithEveryAttribute) {
  EXPECT_EQ(Inbound<CheckHeader>(R"(<check-header name="Authorization"/>)"),
            (CheckHeader{"Authorization", 401, "", true, {}}));
  EXPECT_EQ(Inbound<CheckHeader>(R"(<check-header name="X-Key" failed-check-httpcode="403"
        failed-check-error-message="Key missing or wrong" ignore-case="false">
        <value>one</value><value>two</value></check-header>)"),
            (CheckHeader{"X-Key", 403, "Key missing or wrong", false, {"one", "two"}}));
}

TEST(PolicyTest, ParsesRateLimit) {
  EXPECT_EQ(Inbound<RateLimit>(R"(<rate-limit calls="20" renewal-period="90"/>)"),
            (RateLimit{20, 90s}));
  EXPECT_EQ(Inbound<RateLimit>(R"(<rate-limit calls="4294967295" renewal-period="300"/>)"),
            (RateLimit{4294967295u, 300s}));
}

TEST(PolicyTest, ParsesRateLimitByKey) {
  EXPECT_EQ(Inbound<RateLimitByKey>(R"xml(<rate-limit-by-key calls="10" renewal-period="60"
                counter-key="@(context.Request.IpAddress)"/>)xml"),
            (RateLimitByKey{10, 60s, {CounterKey::Kind::kClientIp, ""}}));
}

TEST(PolicyTest, ParsesQuotaWithCallsBandwidthOrBoth) {
  EXPECT_EQ(Inbound<Quota>(R"(<quota calls="10000" renewal-period="3600"/>)"),
            (Quota{10000, 0, 3600s}));
  EXPECT_EQ(Inbound<Quota>(R"(<quota bandwidth="40000" renewal-period="86400"/>)"),
            (Quota{0, 40000, 86400s}));
  EXPECT_EQ(Inbound<Quota>(R"(<quota calls="5" bandwidth="2048" renewal-period="60"/>)"),
            (Quota{5, 2048, 60s}));
  // The largest of each: calls as rate-limit's, 1 PiB, a year.
  EXPECT_EQ(Inbound<Quota>(R"(<quota calls="4294967295" bandwidth="1099511627776"
                                     renewal-period="31536000"/>)"),
            (Quota{4294967295u, 1099511627776u, 31536000s}));
}

TEST(PolicyTest, ParsesQuotaByKeyWithItsLimitsAndCounterKey) {
  EXPECT_EQ(Inbound<QuotaByKey>(R"xml(<quota-by-key calls="10000" bandwidth="40000"
                renewal-period="3600" counter-key="@(context.Request.IpAddress)"/>)xml"),
            (QuotaByKey{10000, 40000, 3600s, {CounterKey::Kind::kClientIp, ""}}));
  EXPECT_EQ(Inbound<QuotaByKey>(R"xml(<quota-by-key bandwidth="1" renewal-period="1"
                counter-key='@(context.Request.Headers.GetValueOrDefault("X-Tenant",""))'/>)xml"),
            (QuotaByKey{0, 1, 1s, {CounterKey::Kind::kHeader, "X-Tenant"}}));
  EXPECT_EQ(Inbound<QuotaByKey>(
                R"(<quota-by-key calls="3" renewal-period="600" counter-key="everyone"/>)"),
            (QuotaByKey{3, 0, 600s, {CounterKey::Kind::kLiteral, "everyone"}}));
}

TEST(PolicyTest, ParsesReturnResponseWithStatusHeadersAndBody) {
  EXPECT_EQ(Inbound<ReturnResponse>(R"(<return-response>
      <set-status code="429" reason="Too many requests"/>
      <set-header name="Retry-After" exists-action="override"><value>10</value></set-header>
      <set-header name="Vary"><value>Accept</value><value>Origin</value></set-header>
      <set-body>{"error":"slow down"}</set-body>
    </return-response>)"),
            (ReturnResponse{429,
                            "Too many requests",
                            {{"Retry-After", "10"}, {"Vary", "Accept"}, {"Vary", "Origin"}},
                            R"({"error":"slow down"})"}));
  EXPECT_EQ(Inbound<ReturnResponse>("<return-response/>"), ReturnResponse{});
}

TEST(PolicyTest, AppliesExistsActionsWithinReturnResponse) {
  ReturnResponse response = Inbound<ReturnResponse>(R"(<return-response>
      <set-header name="A"><value>1</value></set-header>
      <set-header name="a" exists-action="append"><value>2</value></set-header>
      <set-header name="A" exists-action="skip"><value>3</value></set-header>
      <set-header name="B"><value>x</value></set-header>
      <set-header name="B" exists-action="override"><value>y</value></set-header>
      <set-header name="C"><value>z</value></set-header>
      <set-header name="c" exists-action="delete"/>
    </return-response>)");
  EXPECT_EQ(response.headers,
            (std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"a", "2"}, {"B", "y"}}));
}

TEST(PolicyTest, ParsesForwardRequestTimeoutsAndFlags) {
  auto backend = [](std::string_view policy) {
    return OnlyStep<ForwardRequest>(
        MustParse(StrCat("<policies><backend>", policy, "</backend></policies>")).backend);
  };
  EXPECT_EQ(backend("<forward-request/>"), ForwardRequest{});
  EXPECT_EQ(backend(R"(<forward-request timeout="60" buffer-response="false"
                         fail-on-error-status-code="true" buffer-request-body="false"/>)"),
            (ForwardRequest{60000ms, false, true, false}));
  EXPECT_EQ(backend(R"(<forward-request timeout-ms="1500"/>)").timeout, 1500ms);
}

TEST(PolicyTest, ParsesCacheLookupVaryByHeadersAndQueryParameters) {
  EXPECT_EQ(Inbound<CacheLookup>(R"(<cache-lookup vary-by-developer="false"
        vary-by-developer-groups="false">
      <vary-by-header>Accept</vary-by-header>
      <vary-by-header> Accept-Language </vary-by-header>
      <vary-by-query-parameter>q</vary-by-query-parameter>
    </cache-lookup>)"),
            (CacheLookup{{"Accept", "Accept-Language"}, {"q"}}));
}

TEST(PolicyTest, ParsesCacheStoreDuration) {
  Document document =
      MustParse(R"(<policies><outbound><cache-store duration="3600"/></outbound></policies>)");
  EXPECT_EQ(OnlyStep<CacheStore>(document.outbound), CacheStore{3600s});
}

TEST(PolicyTest, ParsesValidateContentWithDefaultsAndActions) {
  EXPECT_EQ(Inbound<ValidateContent>(R"(<validate-content max-size="102400"/>)"),
            (ValidateContent{102400, "prevent", "prevent"}));
  EXPECT_EQ(Inbound<ValidateContent>(R"(<validate-content unspecified-content-type-action="ignore"
        max-size="4194304" size-exceeded-action="detect"/>)"),
            (ValidateContent{4194304, "ignore", "detect"}));
}

// --- Counter keys ---

CounterKey KeyOf(std::string_view counter_key) {
  return Inbound<RateLimitByKey>(StrCat(R"(<rate-limit-by-key calls="1" renewal-period="1" )",
                                        "counter-key='", counter_key, "'/>"))
      .key;
}

TEST(PolicyTest, TakesACounterKeyWithoutAnExpressionAsALiteral) {
  EXPECT_EQ(KeyOf("everyone"), (CounterKey{CounterKey::Kind::kLiteral, "everyone"}));
  EXPECT_EQ(KeyOf("a@b (c)"), (CounterKey{CounterKey::Kind::kLiteral, "a@b (c)"}));
}

TEST(PolicyTest, RecognizesTheClientIpCounterKey) {
  EXPECT_EQ(KeyOf("@(context.Request.IpAddress)"), (CounterKey{CounterKey::Kind::kClientIp, ""}));
  EXPECT_EQ(KeyOf(" @( context.Request.IpAddress ) "),
            (CounterKey{CounterKey::Kind::kClientIp, ""}));
}

TEST(PolicyTest, RecognizesHeaderCounterKeysWithAnyDefaultOrNone) {
  CounterKey header{CounterKey::Kind::kHeader, "X-Client"};
  EXPECT_EQ(KeyOf(R"(@(context.Request.Headers.GetValueOrDefault("X-Client","")))"), header);
  EXPECT_EQ(KeyOf(R"(@(context.Request.Headers.GetValueOrDefault("X-Client", "anonymous")))"),
            header);
  EXPECT_EQ(KeyOf(R"(@(context.Request.Headers.GetValueOrDefault("X-Client")))"), header);
  // The XML-escaped form that editors produce inside a double-quoted attribute.
  EXPECT_EQ(
      Inbound<RateLimitByKey>(
          R"xml(<rate-limit-by-key calls="1" renewal-period="1" counter-key="@(context.Request.Headers.GetValueOrDefault(&quot;X-Client&quot;,&quot;&quot;))"/>)xml")
          .key,
      header);
}

TEST(PolicyTest, RecognizesQueryParameterCounterKeys) {
  CounterKey query{CounterKey::Kind::kQueryParameter, "tenant"};
  EXPECT_EQ(KeyOf(R"(@(context.Request.Url.Query.GetValueOrDefault("tenant","")))"), query);
  EXPECT_EQ(KeyOf(R"(@(context.Request.Url.Query.GetValueOrDefault("tenant", "none")))"), query);
  EXPECT_EQ(KeyOf(R"(@(context.Request.Url.Query.GetValueOrDefault("tenant")))"), query);
}

TEST(PolicyTest, RejectsOtherCounterKeyExpressionsListingTheSupportedOnes) {
  for (std::string_view key : {
           "@(context.Subscription.Id)",
           "@(context.Request.IpAddress.ToString())",
           R"(@(context.Request.Headers.GetValueOrDefault("X","").Substring(0, 8)))",
           R"(@(context.Request.Headers.GetValueOrDefault("X","","")))",
           R"(@(context.Request.Headers.GetValueOrDefault(X)))",
           R"(@(context.Request.Headers.GetValueOrDefaultX("X")))",
           R"(@(context.Request.Url.Query.GetValueOrDefault("q",)))",
           "@(context.Request.IpAddress",
           "ip-@(context.Request.IpAddress)",
           "@{ return context.Request.IpAddress; }",
       }) {
    ExpectInboundError(
        StrCat(R"(<rate-limit-by-key calls="1" renewal-period="1" counter-key=')", key, "'/>"),
        "rate-limit-by-key",
        StrCat("counter-key=\"", key,
               "\" is not supported; only these expressions are supported: "
               "@(context.Request.IpAddress), "));
  }
}

TEST(PolicyTest, RejectsCounterKeysThatNameNoValidHeaderOrParameter) {
  ExpectInboundError(
      R"(<rate-limit-by-key calls="1" renewal-period="1" counter-key='@(context.Request.Headers.GetValueOrDefault("Bad Name",""))'/>)",
      "rate-limit-by-key", "names an invalid header \"Bad Name\"");
  ExpectInboundError(
      R"(<rate-limit-by-key calls="1" renewal-period="1" counter-key='@(context.Request.Url.Query.GetValueOrDefault(""))'/>)",
      "rate-limit-by-key", "names an empty query parameter");
  ExpectInboundError(R"(<rate-limit-by-key calls="1" renewal-period="1"/>)", "rate-limit-by-key",
                     "counter-key is required");
}

TEST(PolicyTest, ReadsQuotaByKeyCounterKeysAsRateLimitByKeyDoes) {
  auto quota_key = [](std::string_view counter_key) {
    return Inbound<QuotaByKey>(StrCat(R"(<quota-by-key calls="1" renewal-period="1" )",
                                      "counter-key='", counter_key, "'/>"))
        .key;
  };
  for (std::string_view key : {
           "everyone",
           "a@b (c)",
           " @( context.Request.IpAddress ) ",
           R"(@(context.Request.Headers.GetValueOrDefault("X-Client", "anonymous")))",
           R"(@(context.Request.Headers.GetValueOrDefault("X-Client")))",
           R"(@(context.Request.Url.Query.GetValueOrDefault("tenant","")))",
       }) {
    SCOPED_TRACE(key);
    EXPECT_EQ(quota_key(key), KeyOf(key));
  }
  EXPECT_EQ(quota_key(R"(@(context.Request.Url.Query.GetValueOrDefault("tenant")))"),
            (CounterKey{CounterKey::Kind::kQueryParameter, "tenant"}));
  auto quota_by_key = [](std::string_view key) {
    return StrCat(R"(<quota-by-key calls="1" renewal-period="1" counter-key=')", key, "'/>");
  };
  ExpectInboundError(quota_by_key("@(context.Subscription.Id)"), "quota-by-key",
                     "counter-key=\"@(context.Subscription.Id)\" is not supported; only these "
                     "expressions are supported: @(context.Request.IpAddress), ");
  ExpectInboundError(quota_by_key("@{ return context.Request.IpAddress; }"), "quota-by-key",
                     "is not supported; only these expressions are supported");
  ExpectInboundError(quota_by_key(R"(@(context.Request.Headers.GetValueOrDefault("Bad Name","")))"),
                     "quota-by-key", "names an invalid header \"Bad Name\"");
  ExpectInboundError(quota_by_key(R"(@(context.Request.Url.Query.GetValueOrDefault("")))"),
                     "quota-by-key", "names an empty query parameter");
  ExpectInboundError(R"(<quota-by-key calls="1" renewal-period="1"/>)", "quota-by-key",
                     "counter-key is required");
  ExpectInboundError(R"(<quota-by-key calls="1" renewal-period="1" counter-key=" "/>)",
                     "quota-by-key", "counter-key is required");
}

// --- Errors: line, element, attribute ---

TEST(PolicyTest, ReportsMalformedXmlWithPugixmlsDescriptionAndLine) {
  absl::StatusOr<Document> document = Parse("<policies>\n<inbound>\n</outbound>\n</policies>");
  ASSERT_FALSE(document.ok());
  EXPECT_EQ(document.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(document.status().message(), "policy.xml: line 3: Start-end tags mismatch");
  EXPECT_THAT(std::string(Parse("").status().message()),
              StartsWith("policy.xml: line 1: No document element found"));
}

TEST(PolicyTest, RequiresPoliciesAsTheOnlyRootElement) {
  ExpectError("\n<policy><inbound/></policy>", 2, "policy", "the root element must be <policies>");
  ExpectError("<policies/>\n<policies/>", 2, "policies", "only one root element");
  ExpectError("<policies version=\"2\"/>", 1, "policies", "unsupported attribute version");
}

TEST(PolicyTest, RejectsUnknownAndRepeatedSections) {
  ExpectError("<policies>\n<inbound/>\n<outgoing/></policies>", 3, "outgoing",
              "unsupported section <outgoing>; supported: inbound, backend, outbound, on-error");
  ExpectError("<policies>\n<inbound/>\n<inbound/></policies>", 3, "inbound", "appears twice");
  ExpectError("<policies>\n<inbound>\n  stray text <base/></inbound></policies>", 3, "inbound",
              "unexpected text \"stray text\"");
}

TEST(PolicyTest, RejectsUnknownPoliciesListingTheSupportedOnes) {
  ExpectInboundError(R"(<set-variable name="x" value="1"/>)", "set-variable",
                     "unsupported policy <set-variable>; supported: base, cache-lookup, "
                     "cache-store, check-header, forward-request, quota, quota-by-key, "
                     "rate-limit, rate-limit-by-key, return-response, set-header, "
                     "validate-content");
}

TEST(PolicyTest, NamesTheMissingRequiredAttribute) {
  ExpectInboundError(R"(<rate-limit renewal-period="60"/>)", "rate-limit", "calls is required");
  ExpectInboundError(R"(<rate-limit calls="1"/>)", "rate-limit", "renewal-period is required");
  ExpectInboundError(R"(<set-header><value>v</value></set-header>)", "set-header",
                     "name is required");
  ExpectInboundError("<check-header/>", "check-header", "name is required");
  ExpectInboundError("<validate-content/>", "validate-content", "max-size is required");
  ExpectInboundError("<return-response><set-status/></return-response>", "set-status",
                     "code is required");
  ExpectError("<policies><outbound>\n<cache-store/></outbound></policies>", 2, "cache-store",
              "duration is required");
}

TEST(PolicyTest, NamesTheAttributeWhoseValueIsOutOfRangeOrNotANumber) {
  ExpectInboundError(R"(<rate-limit calls="0" renewal-period="60"/>)", "rate-limit",
                     "calls=\"0\" must be between 1 and 4294967295");
  ExpectInboundError(R"(<rate-limit calls="4294967296" renewal-period="60"/>)", "rate-limit",
                     "calls=\"4294967296\" must be between 1 and 4294967295");
  ExpectInboundError(R"(<rate-limit calls="ten" renewal-period="60"/>)", "rate-limit",
                     "calls=\"ten\" must be a whole number");
  ExpectInboundError(R"(<rate-limit calls="-1" renewal-period="60"/>)", "rate-limit",
                     "calls=\"-1\" must be a whole number");
  ExpectInboundError(R"(<rate-limit calls="1" renewal-period="301"/>)", "rate-limit",
                     "renewal-period=\"301\" must be between 1 and 300 seconds");
  ExpectInboundError(R"(<rate-limit-by-key calls="1" renewal-period="0" counter-key="k"/>)",
                     "rate-limit-by-key", "renewal-period=\"0\" must be between 1 and 300 seconds");
  ExpectInboundError(R"(<rate-limit calls="5x" renewal-period="60"/>)", "rate-limit",
                     "calls=\"5x\" must be a whole number");
  ExpectInboundError(R"(<rate-limit calls="99999999999999999999999" renewal-period="60"/>)",
                     "rate-limit", "calls=\"99999999999999999999999\" must be between");
  ExpectInboundError(R"(<validate-content max-size="4194305"/>)", "validate-content",
                     "max-size=\"4194305\" must be between 0 and 4194304 bytes");
  ExpectInboundError(R"(<check-header name="X" failed-check-httpcode="99"/>)", "check-header",
                     "failed-check-httpcode=\"99\" must be between 100 and 599");
  ExpectInboundError(R"(<return-response><set-status code="600"/></return-response>)", "set-status",
                     "code=\"600\" must be between 100 and 599");
  ExpectError("<policies><outbound>\n<cache-store duration=\"0\"/></outbound></policies>", 2,
              "cache-store", "duration=\"0\" must be between 1 and");
  ExpectError("<policies><backend>\n<forward-request timeout=\"0\"/></backend></policies>", 2,
              "forward-request", "timeout=\"0\" must be between 1 and 3600 seconds");
}

TEST(PolicyTest, NamesTheAttributeWithAnInvalidBooleanOrChoice) {
  ExpectError(
      "<policies><backend>\n<forward-request buffer-response=\"yes\"/></backend></policies>", 2,
      "forward-request", "buffer-response=\"yes\" must be \"true\" or \"false\"");
  ExpectInboundError(R"(<check-header name="X" ignore-case="True"/>)", "check-header",
                     "ignore-case=\"True\" must be \"true\" or \"false\"");
  ExpectInboundError(
      R"(<set-header name="X" exists-action="replace"><value>v</value></set-header>)", "set-header",
      "exists-action=\"replace\" must be one of: override, skip, append, delete");
  ExpectInboundError(R"(<validate-content max-size="1" size-exceeded-action="block"/>)",
                     "validate-content",
                     "size-exceeded-action=\"block\" must be one of: prevent, detect, ignore");
  ExpectInboundError(R"(<cache-lookup vary-by-developer="true"/>)", "cache-lookup",
                     "vary-by-developer=\"true\" is not supported");
}

TEST(PolicyTest, RejectsInvalidHeaderNamesAndUnsafeValues) {
  ExpectInboundError(R"(<set-header name="X Y"><value>v</value></set-header>)", "set-header",
                     "name=\"X Y\" is not a valid header name");
  ExpectInboundError(R"(<check-header name=""/>)", "check-header",
                     "name=\"\" is not a valid header name");
  ExpectInboundError("<cache-lookup><vary-by-header>a:b</vary-by-header></cache-lookup>",
                     "vary-by-header", "\"a:b\" is not a valid header name");
  ExpectInboundError("<set-header name=\"X\"><value>a&#10;Evil: 1</value></set-header>", "value",
                     "must not contain line breaks");
}

// Rules made stricter after documents were stored: new writes are refused, naming the line and
// the attribute; Rules::kServe still compiles a stored document that breaks them.
TEST(PolicyTest, RefusesControlCharactersInHeaderValuesAndReasonsButServesStoredOnes) {
  for (const char* value : {"a&#11;b", "a&#x7f;b", "a&#27;[31m"}) {
    const std::string set =
        StrCat(R"(<set-header name="X"><value>)", value, "</value></set-header>");
    ExpectInboundError(set, "value", "must not contain line breaks, NUL or other control");
    const std::string xml = StrCat("<policies><inbound>", set, "</inbound></policies>");
    EXPECT_TRUE(Parse(xml, Rules::kServe).ok()) << value;
  }
  EXPECT_TRUE(Parse(R"(<policies><inbound><set-header name="X"><value>a&#9;b</value>)"
                    "</set-header></inbound></policies>")
                  .ok());
  ExpectInboundError(R"(<return-response><set-status code="403" reason="No&#127;"/>)"
                     "</return-response>",
                     "set-status", "reason must not contain line breaks, NUL or other control");
}

TEST(PolicyTest, RefusesStatusesThatCannotCarryTheResponseAPolicyMakes) {
  for (const char* code : {"100", "199", "204", "304"}) {
    ExpectInboundError(StrCat(R"(<check-header name="X" failed-check-httpcode=")", code, R"("/>)"),
                       "check-header", StrCat("failed-check-httpcode=\"", code, "\""));
  }
  ExpectInboundError(R"(<return-response><set-status code="101"/></return-response>)", "set-status",
                     "code=\"101\" 101 is not a final status");
  ExpectInboundError(
      R"(<return-response><set-status code="204"/><set-body>x</set-body></return-response>)",
      "set-status", "204 responses carry no body");
  ExpectInboundError(
      R"(<return-response><set-status code="304"/><set-body>x</set-body></return-response>)",
      "set-status", "304 responses carry no body");
  // Without a body, 204 and 304 are fine; and stored documents are still served.
  EXPECT_EQ(
      Inbound<ReturnResponse>(R"(<return-response><set-status code="204"/></return-response>)")
          .status,
      204u);
  EXPECT_TRUE(Parse("<policies><inbound><return-response><set-status code=\"101\"/>"
                    "</return-response><check-header name=\"X\" failed-check-httpcode=\"204\"/>"
                    "</inbound></policies>",
                    Rules::kServe)
                  .ok());
}

TEST(PolicyTest, RejectsUnknownAttributesAndChildren) {
  ExpectInboundError(R"(<rate-limit calls="1" renewal-period="1" retry-after-header-name="R"/>)",
                     "rate-limit",
                     "unsupported attribute retry-after-header-name; supported: calls, "
                     "renewal-period");
  ExpectInboundError("<base name=\"x\"/>", "base", "unsupported attribute name; <base> takes none");
  ExpectInboundError("<set-header name=\"X\"><val>v</val></set-header>", "val",
                     "unexpected inside <set-header>; expected <value>");
  ExpectInboundError("<return-response><set-code/></return-response>", "set-code",
                     "expected <set-status>, <set-header>, <set-body>");
  ExpectInboundError("<rate-limit calls=\"1\" renewal-period=\"1\">5</rate-limit>", "rate-limit",
                     "unexpected text \"5\"");
  ExpectInboundError("<rate-limit calls=\"1\" calls=\"2\" renewal-period=\"1\"/>", "rate-limit",
                     "calls appears twice");
}

TEST(PolicyTest, RejectsContradictoryOrIncompleteElements) {
  ExpectError(
      "<policies><backend>\n<forward-request timeout=\"5\" timeout-ms=\"5000\"/></backend>"
      "</policies>",
      2, "forward-request", "timeout and timeout-ms are exclusive");
  ExpectInboundError(R"(<set-header name="X" exists-action="delete"><value>v</value></set-header>)",
                     "set-header", "exists-action=\"delete\" takes no <value>");
  ExpectInboundError(R"(<set-header name="X"/>)", "set-header", "needs at least one <value>");
  ExpectInboundError(
      "<return-response><set-status code=\"200\"/><set-status code=\"201\"/></return-response>",
      "set-status", "appears twice");
  ExpectInboundError("<return-response><set-body>@{ return \"x\"; }</set-body></return-response>",
                     "set-body", "policy expressions are not supported");
}

TEST(PolicyTest, RequiresCallsOrBandwidthAndARenewalPeriodInAQuota) {
  for (std::string_view element : {"quota", "quota-by-key"}) {
    SCOPED_TRACE(element);
    const std::string key = element == "quota" ? "" : R"( counter-key="k")";
    auto quota = [&](std::string_view attributes) {
      return StrCat("<", element, " ", attributes, key, "/>");
    };
    ExpectInboundError(quota(R"(renewal-period="60")"), element, "needs calls, bandwidth or both");
    ExpectInboundError(quota(R"(calls="1")"), element, "renewal-period is required");
    ExpectInboundError(quota(R"(bandwidth="1")"), element, "renewal-period is required");
    ExpectInboundError(quota(R"(calls="1" renewal-period="0")"), element,
                       "renewal-period=\"0\" (a quota that never renews) is not supported; give "
                       "1 to 31536000 seconds");
    ExpectInboundError(quota(R"(calls="1" renewal-period="31536001")"), element,
                       "renewal-period=\"31536001\" must be between 1 and 31536000 seconds");
    ExpectInboundError(quota(R"(calls="1" renewal-period="P0Y4M0DT0H0M0S")"), element,
                       "renewal-period=\"P0Y4M0DT0H0M0S\" must be a whole number");
    ExpectInboundError(quota(R"(calls="0" renewal-period="60")"), element,
                       "calls=\"0\" must be between 1 and 4294967295");
    ExpectInboundError(quota(R"(calls="4294967296" bandwidth="1" renewal-period="60")"), element,
                       "calls=\"4294967296\" must be between 1 and 4294967295");
    ExpectInboundError(quota(R"(bandwidth="0" renewal-period="60")"), element,
                       "bandwidth=\"0\" must be between 1 and 1099511627776 kilobytes");
    ExpectInboundError(quota(R"(calls="1" bandwidth="1099511627777" renewal-period="60")"), element,
                       "bandwidth=\"1099511627777\" must be between 1 and 1099511627776 "
                       "kilobytes");
    ExpectInboundError(quota(R"(bandwidth="40MB" renewal-period="60")"), element,
                       "bandwidth=\"40MB\" must be a whole number");
    ExpectInboundError(quota(R"(calls="1" calls="2" renewal-period="60")"), element,
                       "calls appears twice");
    ExpectInboundError(quota(R"(calls="1" renewal-period="60" retry-after-header-name="R")"),
                       element, "unsupported attribute retry-after-header-name");
  }
  ExpectInboundError(R"(<quota calls="1" renewal-period="60" counter-key="k"/>)", "quota",
                     "unsupported attribute counter-key; supported: calls, bandwidth, "
                     "renewal-period");
  ExpectInboundError(R"(<quota calls="1" renewal-period="60"><value>1</value></quota>)", "value",
                     "unexpected inside <quota>, which takes no child elements");
  ExpectInboundError(R"(<quota calls="1" renewal-period="60">5</quota>)", "quota",
                     "unexpected text \"5\"");
}

TEST(PolicyTest, RefusesPerApiAndPerOperationQuotasNamingTheirLine) {
  ExpectError(R"xml(<policies>
  <inbound>
    <quota calls="100" renewal-period="3600">
      <api name="orders" calls="10">
        <operation name="list" calls="5"/>
      </api>
    </quota>
  </inbound>
</policies>)xml",
              4, "api",
              "per-API/operation quotas inside <quota> are not supported; put the policy at the "
              "API's (or the operation's) scope");
  ExpectError(R"xml(<policies>
  <inbound>
    <quota bandwidth="100" renewal-period="3600">

      <operation id="list" bandwidth="5"/>
    </quota>
  </inbound>
</policies>)xml",
              5, "operation", "per-API/operation quotas inside <quota> are not supported");
  // quota-by-key has no such children in APIM: they are only unexpected.
  ExpectInboundError(
      R"(<quota-by-key calls="1" renewal-period="60" counter-key="k"><api name="a"/></quota-by-key>)",
      "api", "unexpected inside <quota-by-key>, which takes no child elements");
}

TEST(PolicyTest, RefusesQuotaByKeyAttributesThatChangeWhatCountsOrWhenPeriodsStart) {
  const std::string_view limits = R"(calls="10" renewal-period="3600" counter-key="k")";
  ExpectInboundError(
      StrCat("<quota-by-key ", limits,
             R"xml( increment-condition="@(context.Response.StatusCode &gt;= 200)"/>)xml"),
      "quota-by-key",
      "increment-condition=\"@(context.Response.StatusCode >= 200)\" is not supported; every "
      "call the gateway admits counts");
  ExpectInboundError(StrCat("<quota-by-key ", limits, R"( increment-count="2"/>)"), "quota-by-key",
                     "increment-count=\"2\" is not supported; every call counts once");
  ExpectInboundError(
      StrCat("<quota-by-key ", limits, R"( first-period-start="2024-01-01T00:00:00Z"/>)"),
      "quota-by-key",
      "first-period-start=\"2024-01-01T00:00:00Z\" is not supported; the gateway decides when "
      "periods start");
  // Named as well when the rest of the element is wrong too.
  ExpectInboundError(R"(<quota-by-key increment-condition="true"/>)", "quota-by-key",
                     "increment-condition=\"true\" is not supported");
}

TEST(PolicyTest, ReportsTheLineOfTheOffendingElement) {
  ExpectError(R"xml(<policies>
  <inbound>
    <base />
    <rate-limit calls="5" renewal-period="60" />
    <rate-limit-by-key calls="5"
                       renewal-period="60"
                       counter-key="@(context.Product.Name)" />
  </inbound>
</policies>)xml",
              5, "rate-limit-by-key", "counter-key=\"@(context.Product.Name)\"");
  // Windows line ends count once per line.
  ExpectError(
      "<policies>\r\n<inbound>\r\n\r\n<cache-store duration=\"1\"/>\r\n</inbound></policies>", 4,
      "cache-store", "not allowed in <inbound>");
}

// --- Placement ---

TEST(PolicyTest, RejectsPoliciesOutsideTheSectionsTheyBelongIn) {
  struct Case {
    std::string_view section;
    std::string_view policy;
    std::string_view element;
    std::string_view allowed;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"outbound", "<cache-lookup/>", "cache-lookup", "only in <inbound>"},
           {"backend", R"(<check-header name="X"/>)", "check-header", "only in <inbound>"},
           {"on-error", R"(<rate-limit calls="1" renewal-period="1"/>)", "rate-limit",
            "only in <inbound>"},
           {"outbound", R"(<rate-limit-by-key calls="1" renewal-period="1" counter-key="k"/>)",
            "rate-limit-by-key", "only in <inbound>"},
           {"outbound", R"(<validate-content max-size="1"/>)", "validate-content",
            "only in <inbound>"},
           {"outbound", R"(<quota calls="1" renewal-period="1"/>)", "quota", "only in <inbound>"},
           {"backend", R"(<quota bandwidth="1" renewal-period="1"/>)", "quota",
            "only in <inbound>"},
           {"on-error", R"(<quota-by-key calls="1" renewal-period="1" counter-key="k"/>)",
            "quota-by-key", "only in <inbound>"},
           {"inbound", R"(<cache-store duration="1"/>)", "cache-store", "only in <outbound>"},
           {"inbound", "<forward-request/>", "forward-request", "only in <backend>"},
           {"outbound", "<forward-request/>", "forward-request", "only in <backend>"},
           {"backend", R"(<set-header name="X"><value>v</value></set-header>)", "set-header",
            "only in <inbound>, <outbound>, <on-error>"},
           {"backend", "<return-response/>", "return-response",
            "only in <inbound>, <outbound>, <on-error>"},
       }) {
    ExpectError(
        StrCat("<policies>\n<", c.section, ">\n", c.policy, "</", c.section, "></policies>"), 3,
        c.element, StrCat("not allowed in <", c.section, ">; ", c.allowed));
  }
}

TEST(PolicyTest, AcceptsSharedPoliciesInEverySectionTheyBelongIn) {
  Document document = MustParse(R"(<policies>
  <inbound><set-header name="A"><value>1</value></set-header><return-response/></inbound>
  <outbound><set-header name="A"><value>1</value></set-header><return-response/></outbound>
  <on-error><set-header name="A"><value>1</value></set-header><return-response/></on-error>
</policies>)");
  EXPECT_EQ(document.inbound.steps.size(), 2u);
  EXPECT_EQ(document.outbound.steps.size(), 2u);
  EXPECT_EQ(document.on_error.steps.size(), 2u);
}

TEST(PolicyTest, AllowsBaseOnlyOncePerSection) {
  EXPECT_TRUE(Parse("<policies><inbound><base/></inbound><backend><base/></backend>"
                    "<outbound><base/></outbound><on-error><base/></on-error></policies>")
                  .ok());
  ExpectInboundError("<base/><base/>", "base", "appears twice in <inbound>");
}

// --- Merge ---

TEST(PolicyTest, MergeReplacesBaseWithTheParentsStepsInEverySection) {
  Document parent = MustParse(R"(<policies>
  <inbound><rate-limit calls="100" renewal-period="60"/></inbound>
  <backend><forward-request timeout="30"/></backend>
  <outbound><set-header name="X-Global"><value>1</value></set-header></outbound>
  <on-error><set-header name="X-Error"><value>1</value></set-header></on-error>
</policies>)");
  Document child = MustParse(R"(<policies>
  <inbound><check-header name="X-Key"/><base/><set-header name="A"><value>a</value></set-header></inbound>
  <backend><base/></backend>
  <outbound><base/><set-header name="X-Api"><value>2</value></set-header></outbound>
  <on-error><base/></on-error>
</policies>)");
  Document merged = Merge(parent, child);
  std::vector<std::string_view> inbound;
  for (const Step& step : merged.inbound.steps) inbound.push_back(ElementName(step));
  EXPECT_THAT(inbound, ElementsAre("check-header", "rate-limit", "set-header"));
  EXPECT_FALSE(merged.inbound.has_base());
  EXPECT_EQ(merged.backend, parent.backend);
  ASSERT_EQ(merged.outbound.steps.size(), 2u);
  EXPECT_EQ(merged.outbound.steps[0], parent.outbound.steps[0]);
  EXPECT_EQ(merged.outbound.steps[1], child.outbound.steps[1]);
  EXPECT_EQ(merged.on_error, parent.on_error);
}

TEST(PolicyTest, MergeDoesNotInheritSectionsWithoutBase) {
  Document parent = MustParse(R"(<policies>
  <inbound><rate-limit calls="100" renewal-period="60"/></inbound>
  <backend><forward-request timeout="30"/></backend>
  <outbound><set-header name="X-Global"><value>1</value></set-header></outbound>
  <on-error><set-header name="X-Error"><value>1</value></set-header></on-error>
</policies>)");
  Document child = MustParse(R"(<policies>
  <inbound><check-header name="X-Key"/></inbound>
  <backend><forward-request timeout="5"/></backend>
  <outbound/>
</policies>)");
  Document merged = Merge(parent, child);
  EXPECT_EQ(merged.inbound, child.inbound);
  EXPECT_EQ(merged.backend, child.backend);
  EXPECT_THAT(merged.outbound.steps, IsEmpty());
  EXPECT_THAT(merged.on_error.steps, IsEmpty());  // absent in the child
}

TEST(PolicyTest, MergeChainsGlobalApiAndOperation) {
  Document global = MustParse(
      R"(<policies><inbound><rate-limit calls="100" renewal-period="60"/></inbound></policies>)");
  Document api =
      MustParse(R"(<policies><inbound><base/><check-header name="X-Key"/></inbound></policies>)");
  Document operation = MustParse(
      R"(<policies><inbound><base/><rate-limit calls="1" renewal-period="1"/></inbound></policies>)");
  Document merged = Merge(Merge(global, api), operation);
  std::vector<std::string_view> names;
  for (const Step& step : merged.inbound.steps) names.push_back(ElementName(step));
  EXPECT_THAT(names, ElementsAre("rate-limit", "check-header", "rate-limit"));
  EXPECT_EQ(std::get<RateLimit>(merged.inbound.steps[0]).calls, 100u);
  EXPECT_EQ(std::get<RateLimit>(merged.inbound.steps[2]).calls, 1u);
}

TEST(PolicyTest, MergeCarriesQuotasThroughBaseLikeAnyStep) {
  Document global = MustParse(R"xml(<policies><inbound>
    <quota-by-key calls="1000" renewal-period="86400" counter-key="@(context.Request.IpAddress)"/>
  </inbound></policies>)xml");
  Document api = MustParse(R"(<policies><inbound>
    <base/><quota bandwidth="4096" renewal-period="3600"/>
  </inbound></policies>)");
  Document operation = MustParse(
      R"(<policies><inbound><quota calls="1" renewal-period="1"/><base/></inbound></policies>)");
  Document merged = Merge(Merge(global, api), operation);
  ASSERT_EQ(merged.inbound.steps.size(), 3u);
  EXPECT_EQ(merged.inbound.steps[0], Step(Quota{1, 0, 1s}));
  EXPECT_EQ(merged.inbound.steps[1],
            Step(QuotaByKey{1000, 0, 86400s, {CounterKey::Kind::kClientIp, ""}}));
  EXPECT_EQ(merged.inbound.steps[2], Step(Quota{0, 4096, 3600s}));
}

// --- SSE ---

TEST(PolicyTest, FindsNoSseViolationsInAStreamFriendlyDocument) {
  EXPECT_THAT(SseViolations(MustParse(R"xml(<policies>
  <inbound>
    <base/>
    <check-header name="X-Key"/>
    <rate-limit-by-key calls="10" renewal-period="60" counter-key="@(context.Request.IpAddress)"/>
    <set-header name="X-Forwarded-By"><value>apim</value></set-header>
  </inbound>
  <backend><forward-request timeout="60" buffer-response="false"/></backend>
  <outbound><set-header name="Cache-Control"><value>no-cache</value></set-header></outbound>
</policies>)xml")),
              IsEmpty());
  EXPECT_THAT(SseViolations(Document{}), IsEmpty());
  EXPECT_THAT(
      SseViolations(MustParse("<policies><backend><forward-request/></backend></policies>")),
      IsEmpty());
}

// A running stream is not cut by a quota: its bytes count when it ends.
TEST(PolicyTest, AllowsQuotasOnSseApis) {
  EXPECT_THAT(SseViolations(MustParse(R"xml(<policies>
  <inbound>
    <quota calls="100" bandwidth="1048576" renewal-period="86400"/>
    <quota-by-key bandwidth="1024" renewal-period="3600" counter-key="@(context.Request.IpAddress)"/>
  </inbound>
</policies>)xml")),
              IsEmpty());
}

TEST(PolicyTest, ReportsEachPolicyThatWouldBreakAnSseStream) {
  auto violations = [](std::string_view xml) { return SseViolations(MustParse(xml)); };
  EXPECT_THAT(violations("<policies><inbound><cache-lookup/></inbound></policies>"),
              ElementsAre("cache-lookup: responses would be replayed from cache instead of "
                          "streamed"));
  EXPECT_THAT(
      violations(R"(<policies><outbound><cache-store duration="60"/></outbound></policies>)"),
      ElementsAre(StartsWith("cache-store: ")));
  EXPECT_THAT(
      violations(R"(<policies><inbound><validate-content max-size="1024"/></inbound></policies>)"),
      ElementsAre("validate-content: buffers the body, so events would be delayed"));
  EXPECT_THAT(violations(R"(<policies><backend><forward-request buffer-response="true"/>
                              </backend></policies>)"),
              ElementsAre("forward-request buffer-response=\"true\": events would be buffered"));
}

TEST(PolicyTest, ReportsEveryViolationOnceAcrossSections) {
  EXPECT_THAT(SseViolations(MustParse(R"(<policies>
  <inbound><cache-lookup/><validate-content max-size="1"/><cache-lookup/></inbound>
  <backend><forward-request buffer-response="true"/></backend>
  <outbound><cache-store duration="1"/></outbound>
</policies>)")),
              ElementsAre(StartsWith("cache-lookup: "), StartsWith("validate-content: "),
                          StartsWith("forward-request "), StartsWith("cache-store: ")));
}

TEST(PolicyTest, JudgesTheMergedDocumentIncludingInheritedPolicies) {
  Document global =
      MustParse(R"(<policies><outbound><cache-store duration="60"/></outbound></policies>)");
  Document inherits = MustParse("<policies><outbound><base/></outbound></policies>");
  Document opts_out = MustParse("<policies><outbound/></policies>");
  EXPECT_THAT(SseViolations(Merge(global, inherits)), ElementsAre(StartsWith("cache-store: ")));
  EXPECT_THAT(SseViolations(Merge(global, opts_out)), IsEmpty());
}

}  // namespace
}  // namespace apim::policy
