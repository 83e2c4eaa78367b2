// Shape rules: each bad input is INVALID_ARGUMENT and the message starts with the field's name.
#include "common/validation.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/tls/pem.h"

namespace apim {
namespace {

v1::Api GoodApi() {
  v1::Api api;
  api.set_name("orders");
  api.set_path_prefix("/orders");
  api.set_backend_url("http://127.0.0.1:9000/v1");
  return api;
}

void ExpectInvalid(const absl::Status& status, std::string_view field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(std::string(status.message()).starts_with(std::string(field) + ":"))
      << "expected the message to name " << field << ": " << status;
}

TEST(ValidationTest, AcceptsAWellFormedApi) { EXPECT_TRUE(Validate(GoodApi()).ok()); }

TEST(ValidationTest, RejectsBadApiNames) {
  for (const std::string& name : std::vector<std::string>{"", "Orders", "-orders", "orders-",
                                                          "or_ders", std::string(64, 'a')}) {
    v1::Api api = GoodApi();
    api.set_name(name);
    ExpectInvalid(Validate(api), "api.name");
  }
}

TEST(ValidationTest, RejectsBadPathPrefixes) {
  for (std::string prefix :
       {"", "orders", "/orders/", "/a//b", "/a/../b", "/a/..", "/a b", "/a?x=1", "/a#b"}) {
    v1::Api api = GoodApi();
    api.set_path_prefix(prefix);
    ExpectInvalid(Validate(api), "api.path_prefix");
  }
  v1::Api root = GoodApi();
  root.set_path_prefix("/");
  EXPECT_TRUE(Validate(root).ok());
}

TEST(ValidationTest, RejectsBackendUrlsThatAreNotPlainHttp) {
  for (std::string url :
       {"", "orders", "ftp://host/x", "http://", "http://user:pw@host/", "http://host:0/",
        "http://host:99999/", "http://host/?q=1", "http://host/#f", "/relative"}) {
    v1::Api api = GoodApi();
    api.set_backend_url(url);
    SCOPED_TRACE(url);
    ExpectInvalid(Validate(api), "api.backend_url");
  }
  v1::Api https = GoodApi();
  https.set_backend_url("https://orders.internal:8443");
  EXPECT_TRUE(Validate(https).ok());
}

TEST(ValidationTest, RejectsBadHostsGatewaysAndTimeouts) {
  v1::Api api = GoodApi();
  api.set_host("API.example.com:80");
  ExpectInvalid(Validate(api), "api.host");

  api = GoodApi();
  api.add_gateways("edge");
  api.add_gateways("edge");
  ExpectInvalid(Validate(api), "api.gateways[1]");

  api = GoodApi();
  api.set_timeout_seconds(0);
  ExpectInvalid(Validate(api), "api.timeout_seconds");
}

TEST(ValidationTest, RejectsTiersWhoseHeartbeatCannotBeatTheIdleTimeout) {
  v1::Tier tier;
  tier.set_name("custom");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(30);
  tier.set_heartbeat_interval_seconds(30);
  ExpectInvalid(Validate(tier), "tier.heartbeat_interval_seconds");
  tier.set_idle_timeout_seconds(0);
  ExpectInvalid(Validate(tier), "tier.idle_timeout_seconds");
}

TEST(ValidationTest, RequiresAResponseLimitOnTiersWithoutLongLivedConnections) {
  v1::Tier tier;
  tier.set_name("tiny");
  tier.set_idle_timeout_seconds(240);
  ExpectInvalid(Validate(tier), "tier.max_response_duration_seconds");
  tier.set_max_response_duration_seconds(30);
  EXPECT_TRUE(Validate(tier).ok());
}

TEST(ValidationTest, GatewaysNeedANameAndATier) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  ExpectInvalid(Validate(gateway), "gateway.tier");
  gateway.set_tier("standard");
  EXPECT_TRUE(Validate(gateway).ok());
}

TEST(ValidationTest, ScopesAreGlobalOrNameAnApi) {
  v1::DiagnosticSetting diagnostic;
  for (std::string scope : {"", "all", "api:", "api:Bad", "operation:orders/list"}) {
    diagnostic.set_scope(scope);
    ExpectInvalid(Validate(diagnostic), "diagnostic_setting.scope");
  }
  diagnostic.set_scope("api:orders");
  EXPECT_TRUE(Validate(diagnostic).ok());

  v1::Policy policy;
  policy.set_xml("<policies/>");
  policy.set_scope("operation:orders/list");
  EXPECT_TRUE(Validate(policy).ok());
  policy.set_scope("operation:orders");
  ExpectInvalid(Validate(policy), "policy.scope");
}

TEST(ValidationTest, LimitsDiagnosticsToWhatAGatewayCanLog) {
  v1::DiagnosticSetting diagnostic;
  diagnostic.set_scope("global");
  diagnostic.set_sampling_percentage(101);
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.sampling_percentage");
  diagnostic.clear_sampling_percentage();
  diagnostic.set_request_body_bytes(8193);
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.request_body_bytes");
  diagnostic.set_request_body_bytes(8192);
  diagnostic.add_headers("bad header");
  ExpectInvalid(Validate(diagnostic), "diagnostic_setting.headers[0]");
}

TEST(ValidationTest, CacheSettingsNeedPositiveLimits) {
  v1::CacheSetting cache;
  cache.set_scope("global");
  cache.set_default_ttl_seconds(0);
  ExpectInvalid(Validate(cache), "cache_setting.default_ttl_seconds");
  cache.set_default_ttl_seconds(60);
  cache.set_max_entry_bytes(0);
  ExpectInvalid(Validate(cache), "cache_setting.max_entry_bytes");
}

TEST(ValidationTest, PolicyXmlMustParseAndNamesTheLineOfTheError) {
  v1::Policy policy;
  policy.set_scope("global");
  policy.set_xml("<policies>\n  <inbound>\n    <base/>\n  </outbound>\n</policies>");
  absl::Status status = Validate(policy);
  ExpectInvalid(status, "policy.xml");
  EXPECT_NE(status.message().find("line 4"), std::string::npos) << status;
  policy.set_xml("<inbound/>");
  ExpectInvalid(Validate(policy), "policy.xml");
}

// Rules made stricter after documents were stored: refused for new writes, served when stored.
TEST(ValidationTest, NamesAndDescriptionsMustNotCarryTerminalEscapes) {
  v1::Api api = GoodApi();
  for (const char* name : {"\x1b[2Jwiped", "bell\a", "del\x7f",
                           "csi\xc2\x9b"
                           "31m",
                           "two\nlines"}) {
    api.set_display_name(name);
    ExpectInvalid(Validate(api), "api.display_name");
    EXPECT_TRUE(Validate(api, Rules::kServe).ok()) << name;
  }
  api.set_display_name("Orders — ünïcode is fine");
  EXPECT_TRUE(Validate(api).ok());
  api.set_description("Line one\nline two\twith a tab");
  EXPECT_TRUE(Validate(api).ok());
  api.set_description("\x1b]0;title\a");
  ExpectInvalid(Validate(api), "api.description");

  v1::Product product;
  product.set_name("gold");
  product.set_display_name("\x1b[31mGold");
  ExpectInvalid(Validate(product), "product.display_name");
  v1::Subscription subscription;
  subscription.set_name("alice");
  subscription.set_scope("all");
  subscription.set_display_name("\x1b[31mAlice");
  ExpectInvalid(Validate(subscription), "subscription.display_name");
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  gateway.set_description("\x1b[31m");
  ExpectInvalid(Validate(gateway), "gateway.description");
}

// A standalone worker's --config file is a snapshot: its diagnostic and cache settings are held
// to the rules the control plane applies.
TEST(ValidationTest, ASnapshotsDiagnosticAndCacheSettingsAreValidated) {
  v1::Snapshot snapshot;
  v1::Tier& tier = *snapshot.mutable_tier();
  tier.set_name("standard");
  tier.set_long_lived_connections(true);
  tier.set_idle_timeout_seconds(240);
  *snapshot.add_apis() = GoodApi();
  ASSERT_TRUE(Validate(snapshot).ok()) << Validate(snapshot);
  v1::DiagnosticSetting& diagnostic = *snapshot.add_diagnostics();
  diagnostic.set_scope("global");
  diagnostic.add_headers("X-Evil\r\nInjected");
  ExpectInvalid(Validate(snapshot), "diagnostic_setting.headers[0]");
  diagnostic.clear_headers();
  diagnostic.set_request_body_bytes(100000000);
  ExpectInvalid(Validate(snapshot), "diagnostic_setting.request_body_bytes");
  diagnostic.set_request_body_bytes(0);
  snapshot.add_caches()->set_scope("global");
  snapshot.mutable_caches(0)->set_max_entry_bytes(0);
  ExpectInvalid(Validate(snapshot), "cache_setting.max_entry_bytes");
}

namespace certificates {

constexpr long kDay = 24 * 3600;

std::string PemOf(int (*write)(BIO*, void*), void* object) {
  BIO* bio = BIO_new(BIO_s_mem());
  write(bio, object);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

// A self-signed EC certificate "CN=api.example.com" for `names` (openssl's subjectAltName
// syntax), valid from now + `from` to now + `until` seconds, with its key.
v1::Certificate SelfSigned(long from, long until,
                           const char* names = "DNS:api.example.com,IP:10.0.0.1") {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x509 = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
  X509_gmtime_adj(X509_getm_notBefore(x509), from);
  X509_gmtime_adj(X509_getm_notAfter(x509), until);
  X509_set_pubkey(x509, key);
  X509_NAME* name = X509_get_subject_name(x509);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("api.example.com"), -1, -1, 0);
  X509_set_issuer_name(x509, name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, x509, x509, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, names);
  X509_add_ext(x509, extension, -1);
  X509_EXTENSION_free(extension);
  X509_sign(x509, key, EVP_sha256());
  v1::Certificate certificate;
  certificate.set_name("web");
  certificate.set_certificate_chain(PemOf(
      [](BIO* bio, void* x) { return PEM_write_bio_X509(bio, static_cast<X509*>(x)); }, x509));
  certificate.set_private_key(PemOf(
      [](BIO* bio, void* k) {
        return PEM_write_bio_PrivateKey(bio, static_cast<EVP_PKEY*>(k), nullptr, nullptr, 0,
                                        nullptr, nullptr);
      },
      key));
  X509_free(x509);
  EVP_PKEY_free(key);
  return certificate;
}

TEST(CertificateValidationTest, AcceptsACertificateValidNowWithItsKey) {
  EXPECT_TRUE(Validate(SelfSigned(-kDay, kDay)).ok()) << Validate(SelfSigned(-kDay, kDay));
}

TEST(CertificateValidationTest, RefusesACertificateExpiredOrNotValidYet) {
  absl::Status expired = Validate(SelfSigned(-2 * kDay, -kDay));
  ExpectInvalid(expired, "certificate.certificate_chain");
  EXPECT_NE(expired.message().find("expired at"), absl::string_view::npos) << expired;
  absl::Status early = Validate(SelfSigned(kDay, 2 * kDay));
  ExpectInvalid(early, "certificate.certificate_chain");
  EXPECT_NE(early.message().find("not valid until"), absl::string_view::npos) << early;
}

TEST(CertificateValidationTest, RefusesAKeyThatIsNotTheCertificates) {
  v1::Certificate certificate = SelfSigned(-kDay, kDay);
  certificate.set_private_key(SelfSigned(-kDay, kDay).private_key());
  ExpectInvalid(Validate(certificate), "certificate.private_key");
}

TEST(CertificateValidationTest, RequiresAChainAndAKeyThatParse) {
  v1::Certificate certificate = SelfSigned(-kDay, kDay);
  for (auto clear : {&v1::Certificate::clear_certificate_chain, &v1::Certificate::clear_name}) {
    v1::Certificate missing = certificate;
    (missing.*clear)();
    EXPECT_EQ(Validate(missing).code(), absl::StatusCode::kInvalidArgument);
  }
  v1::Certificate no_key = certificate;
  no_key.clear_private_key();
  ExpectInvalid(Validate(no_key), "certificate.private_key");
  v1::Certificate garbage = certificate;
  garbage.set_certificate_chain("-----BEGIN CERTIFICATE-----\nnot base64\n");
  ExpectInvalid(Validate(garbage), "certificate.certificate_chain");
  garbage = certificate;
  garbage.set_private_key("hello");
  ExpectInvalid(Validate(garbage), "certificate.private_key");
}

TEST(CertificateValidationTest, ReadsSubjectNamesDatesAndFingerprintFromTheLeaf) {
  absl::StatusOr<tls::LeafCertificate> leaf =
      tls::ReadLeafCertificate("chain", SelfSigned(-kDay, kDay).certificate_chain());
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(leaf->subject, "CN=api.example.com");
  EXPECT_EQ(leaf->issuer, "CN=api.example.com");
  EXPECT_EQ(leaf->subject_alt_names,
            (std::vector<std::string>{"DNS:api.example.com", "IP:10.0.0.1"}));
  EXPECT_NEAR(static_cast<double>(leaf->not_after - leaf->not_before), 2.0 * kDay, 5);
  EXPECT_EQ(leaf->sha256_fingerprint.size(), 32u * 3 - 1);
  EXPECT_EQ(leaf->sha256_fingerprint.find_first_not_of("0123456789ABCDEF:"), std::string::npos);
  EXPECT_EQ(tls::ReadLeafCertificate("chain", "hello").status().message(),
            "chain: holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
}

TEST(CertificateValidationTest, AWildcardNameCoversOneLabelOnly) {
  tls::LeafCertificate leaf;
  leaf.subject_alt_names = {"DNS:api.example.com", "DNS:*.Shop.Example.com", "IP:10.0.0.1"};
  EXPECT_TRUE(tls::CoversHostname(leaf, "api.example.com"));
  EXPECT_TRUE(tls::CoversHostname(leaf, "eu.shop.example.com"));
  EXPECT_TRUE(tls::CoversHostname(leaf, "*.shop.example.com"));
  EXPECT_FALSE(tls::CoversHostname(leaf, "a.eu.shop.example.com"));
  EXPECT_FALSE(tls::CoversHostname(leaf, "shop.example.com"));
  EXPECT_FALSE(tls::CoversHostname(leaf, "www.example.com"));
  EXPECT_FALSE(tls::CoversHostname(leaf, "*.example.com"));
  EXPECT_FALSE(tls::CoversHostname(leaf, "10.0.0.1"));
}

v1::Gateway GatewayWithHostnames(std::initializer_list<std::pair<const char*, bool>> hostnames) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  for (const auto& [hostname, is_default] : hostnames) {
    v1::HostnameBinding& binding = *gateway.add_hostnames();
    binding.set_hostname(hostname);
    binding.set_certificate("web");
    binding.set_is_default(is_default);
  }
  return gateway;
}

TEST(CertificateValidationTest, HostnamesAreLowercaseDnsNamesOrOneLeadingWildcard) {
  EXPECT_TRUE(Validate(GatewayWithHostnames({{"api.example.com", false},
                                             {"*.example.com", true},
                                             {"localhost", false},
                                             {"x-1.example.com", false}}))
                  .ok());
  for (const char* hostname :
       {"", "API.example.com", "*.*.example.com", "api.*.com", "*", "*.", "a..b", "a.",
        ".example.com", "-a.example.com", "a-.example.com", "api.example.com:443",
        "api_1.example.com", "http://api.example.com"}) {
    SCOPED_TRACE(hostname);
    ExpectInvalid(Validate(GatewayWithHostnames({{hostname, false}})),
                  "gateway.hostnames[0].hostname");
  }
  ExpectInvalid(
      Validate(GatewayWithHostnames({{std::string(64, 'a').append(".com").c_str(), false}})),
      "gateway.hostnames[0].hostname");
}

TEST(CertificateValidationTest, HostnamesAreUniqueWithOneDefaultAndACertificate) {
  ExpectInvalid(
      Validate(GatewayWithHostnames({{"a.example.com", false}, {"a.example.com", false}})),
      "gateway.hostnames[1].hostname");
  ExpectInvalid(Validate(GatewayWithHostnames({{"a.example.com", true}, {"b.example.com", true}})),
                "gateway.hostnames[1].is_default");
  v1::Gateway no_certificate = GatewayWithHostnames({{"a.example.com", false}});
  no_certificate.mutable_hostnames(0)->clear_certificate();
  ExpectInvalid(Validate(no_certificate), "gateway.hostnames[0].certificate");
}

v1::Gateway GatewayWithSharedState(const std::string& redis_address) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  gateway.mutable_shared_state()->set_redis_address(redis_address);
  return gateway;
}

TEST(SharedStateValidationTest, AcceptsHostsByNameIpv4OrBracketedIpv6AndEveryFieldInBounds) {
  for (const char* address : {"redis.internal:6379", "Redis-1.cache_zone.svc:1", "10.0.0.5:65535",
                              "[fd00::5]:6380", "[::1]:6379", "localhost:6379"}) {
    EXPECT_TRUE(Validate(GatewayWithSharedState(address)).ok())
        << address << ": " << Validate(GatewayWithSharedState(address));
  }
  v1::Gateway full = GatewayWithSharedState("redis.internal:6380");
  v1::SharedState& shared = *full.mutable_shared_state();
  shared.set_tls(true);
  shared.set_ca_certificate(SelfSigned(-kDay, kDay).certificate_chain());
  shared.set_username("apim");
  shared.set_password(std::string(4096, 'p'));
  shared.set_database(65535);
  shared.set_key_prefix(std::string(128, '~'));
  EXPECT_TRUE(Validate(full).ok()) << Validate(full);
}

TEST(SharedStateValidationTest, AnAllEmptySettingIsNoneAndValid) {
  v1::Gateway gateway = GatewayWithSharedState("");
  EXPECT_TRUE(Validate(gateway).ok()) << Validate(gateway);
  gateway.mutable_shared_state()->set_has_password(true);  // Output only.
  EXPECT_TRUE(Validate(gateway).ok()) << Validate(gateway);
}

TEST(SharedStateValidationTest, RedisAddressesAreHostColonPort) {
  for (const char* address :
       {"redis.internal", "redis.internal:", "redis.internal:0", "redis.internal:65536",
        "redis.internal:+1", "redis.internal:6379x", ":6379", "redis://redis.internal:6379",
        "::1:6379", "[::1:6379", "[::1]", "[]:6379", "[zz::1]:6379", "a..b:6379", "-a.b:6379",
        "a b:6379", "300.0.0.1:6379", "1.2.3:6379", "redis.internal:6379/0"}) {
    SCOPED_TRACE(address);
    ExpectInvalid(Validate(GatewayWithSharedState(address)), "gateway.shared_state.redis_address");
  }
  v1::Gateway tls_only = GatewayWithSharedState("");
  tls_only.mutable_shared_state()->set_tls(true);
  ExpectInvalid(Validate(tls_only), "gateway.shared_state.redis_address");
}

TEST(SharedStateValidationTest, RefusesEachFieldOutOfBoundsNamingIt) {
  struct Case {
    void (*set)(v1::SharedState&);
    const char* field;
  };
  for (const Case& refused : std::vector<Case>{
           {[](v1::SharedState& s) {
              s.set_tls(true);
              s.set_ca_certificate("hello");
            },
            "gateway.shared_state.ca_certificate"},
           {[](v1::SharedState& s) {
              s.set_ca_certificate(SelfSigned(-kDay, kDay).certificate_chain());
            },
            "gateway.shared_state.ca_certificate"},
           {[](v1::SharedState& s) {
              s.set_username("a b");
              s.set_password("p");
            },
            "gateway.shared_state.username"},
           {[](v1::SharedState& s) {
              s.set_username("a\x1b[2J");
              s.set_password("p");
            },
            "gateway.shared_state.username"},
           {[](v1::SharedState& s) { s.set_username("apim"); }, "gateway.shared_state.password"},
           {[](v1::SharedState& s) { s.set_password("a\nb"); }, "gateway.shared_state.password"},
           {[](v1::SharedState& s) { s.set_password("a\rb"); }, "gateway.shared_state.password"},
           {[](v1::SharedState& s) { s.set_password(std::string("a\0b", 3)); },
            "gateway.shared_state.password"},
           {[](v1::SharedState& s) { s.set_password(std::string(4097, 'p')); },
            "gateway.shared_state.password"},
           {[](v1::SharedState& s) { s.set_database(65536); }, "gateway.shared_state.database"},
           {[](v1::SharedState& s) { s.set_key_prefix("a b"); }, "gateway.shared_state.key_prefix"},
           {[](v1::SharedState& s) { s.set_key_prefix("caf\xc3\xa9:"); },
            "gateway.shared_state.key_prefix"},
           {[](v1::SharedState& s) { s.set_key_prefix("a\x7f"); },
            "gateway.shared_state.key_prefix"},
           {[](v1::SharedState& s) { s.set_key_prefix(std::string(129, 'k')); },
            "gateway.shared_state.key_prefix"},
       }) {
    v1::Gateway gateway = GatewayWithSharedState("redis.internal:6379");
    refused.set(*gateway.mutable_shared_state());
    SCOPED_TRACE(gateway.shared_state().ShortDebugString());
    ExpectInvalid(Validate(gateway), refused.field);
  }
  // The same rules name the snapshot's field where a worker checks one.
  v1::SharedState pushed;
  pushed.set_redis_address("redis.internal");
  ExpectInvalid(ValidateSharedState(pushed, "snapshot.shared_state"),
                "snapshot.shared_state.redis_address");
}

}  // namespace certificates
}  // namespace
}  // namespace apim
