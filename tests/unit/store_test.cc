// The store on a real SQLite file: migrations, CRUD, references between resources, etags,
// revisions, and that a rejected write changes nothing.
#include "controlplane/store/store.h"

#include <gtest/gtest.h>

#include "apim/v1/resources.pb.h"
#include "controlplane/store/migrations.h"
#include "tests/support/process.h"

namespace apim::store {
namespace {

using apim::testing::TempDir;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = Open(); }

  std::unique_ptr<Store> Open() {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string path() const { return (dir_.path() / "apim.db").string(); }
  uint64_t Revision() { return *store_->Revision(); }

  v1::Gateway MakeGateway(std::string name, std::string tier) {
    v1::Gateway gateway;
    gateway.set_name(std::move(name));
    gateway.set_tier(std::move(tier));
    absl::StatusOr<v1::Gateway> created = store_->Create(gateway);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : gateway;
  }

  static v1::Api Api(std::string name, std::string prefix, std::vector<std::string> gateways,
                     bool sse = false) {
    v1::Api api;
    api.set_name(std::move(name));
    api.set_path_prefix(std::move(prefix));
    api.set_backend_url("http://127.0.0.1:9000");
    api.set_sse(sse);
    for (auto& gateway : gateways) api.add_gateways(gateway);
    return api;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, SeedsTheBuiltInTiersWithTheirLimits) {
  absl::StatusOr<ListResult<v1::Tier>> tiers = store_->List<v1::Tier>({});
  ASSERT_TRUE(tiers.ok()) << tiers.status();
  std::vector<std::string> names;
  for (const v1::Tier& tier : tiers->items) {
    names.push_back(tier.name());
    EXPECT_TRUE(tier.built_in());
    EXPECT_EQ(tier.idle_timeout_seconds(), 240u) << tier.name();
    EXPECT_EQ(tier.long_lived_connections(), tier.name() != "consumption") << tier.name();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"basic", "basicv2", "consumption", "developer",
                                             "premium", "premiumv2", "standard", "standardv2"}));
  absl::StatusOr<v1::Tier> consumption = store_->Get<v1::Tier>("consumption");
  ASSERT_TRUE(consumption.ok());
  EXPECT_EQ(consumption->max_response_duration_seconds(), 30u);
  EXPECT_FALSE(consumption->etag().empty());
}

TEST_F(StoreTest, ReopeningTheFileFindsEverythingAndAppliesNoMigrationTwice) {
  MakeGateway("edge", "standard");
  ASSERT_TRUE(store_->Create(Api("orders", "/orders", {"edge"})).ok());
  v1::DiagnosticSetting diagnostic;
  diagnostic.set_scope("api:orders");
  diagnostic.add_headers("x-request-id");
  ASSERT_TRUE(store_->Create(diagnostic).ok());
  v1::Policy policy;
  policy.set_scope("global");
  policy.set_xml("<policies/>");
  ASSERT_TRUE(store_->Create(policy).ok());
  const uint64_t revision = Revision();
  store_.reset();

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Revision(), revision);
  absl::StatusOr<v1::Api> api = store_->Get<v1::Api>("orders");
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_EQ(api->gateways(0), "edge");
  EXPECT_EQ(store_->Get<v1::Gateway>("edge")->tier(), "standard");
  EXPECT_EQ(store_->Get<v1::DiagnosticSetting>("api:orders")->headers(0), "x-request-id");
  EXPECT_EQ(store_->Get<v1::Policy>("global")->xml(), "<policies/>");
  EXPECT_EQ(store_->List<v1::Tier>({})->items.size(), 8u) << "seed migration ran twice";
}

TEST_F(StoreTest, HostnameBindingsSurviveAReopenAndHoldTheirCertificate) {
  v1::Certificate certificate;
  certificate.set_name("web");
  certificate.set_certificate_chain("chain");
  certificate.set_private_key("key");
  ASSERT_TRUE(store_->Create(certificate).ok());
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  for (const char* hostname : {"b.example.com", "a.example.com"}) {
    v1::HostnameBinding& binding = *gateway.add_hostnames();
    binding.set_hostname(hostname);
    binding.set_certificate("web");
  }
  gateway.mutable_hostnames(1)->set_is_default(true);
  ASSERT_TRUE(store_->Create(gateway).ok());
  store_.reset();

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<v1::Gateway> stored = store_->Get<v1::Gateway>("edge");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->hostnames_size(), 2);
  EXPECT_EQ(stored->hostnames(0).hostname(), "b.example.com") << "in the order given";
  EXPECT_TRUE(stored->hostnames(1).is_default());
  EXPECT_EQ(store_->Get<v1::Certificate>("web")->private_key(), "key");

  absl::Status refused = store_->Delete<v1::Certificate>("web", "");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(),
            "certificate \"web\" is bound by gateways \"edge\"; bind their hostnames to another "
            "certificate or remove them first");
  v1::Gateway unknown = gateway;
  unknown.set_name("other");
  unknown.mutable_hostnames(0)->set_certificate("nope");
  EXPECT_EQ(store_->Create(unknown).status().message(),
            "gateway.hostnames[0].certificate: certificate \"nope\" not found");
  // The gateway's bindings go with it, and then the certificate may go.
  ASSERT_TRUE(store_->Delete<v1::Gateway>("edge", "").ok());
  EXPECT_TRUE(store_->Delete<v1::Certificate>("web", "").ok());
}

TEST_F(StoreTest, RefusesADatabaseWrittenByANewerRelease) {
  store_.reset();
  {
    auto db = Db::Open(path());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO schema_migrations VALUES (999, 'future', 'now')").ok());
  }
  absl::StatusOr<std::unique_ptr<Store>> reopened = Store::Open(path());
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(reopened.status().message().find("newer"), std::string::npos);
}

TEST(MigrationsTest, AFailingMigrationRollsBackAllPendingOnes) {
  TempDir dir;
  auto db = Db::Open((dir.path() / "m.db").string());
  ASSERT_TRUE(db.ok());
  const Migration migrations[] = {{1, "0001_ok.sql", "CREATE TABLE a (x INTEGER);"},
                                  {2, "0002_bad.sql", "CREATE TABLE b (x INTEGER"}};
  absl::Status applied = ApplyMigrations(**db, migrations);
  EXPECT_FALSE(applied.ok());
  EXPECT_NE(applied.message().find("0002_bad.sql"), std::string::npos);
  EXPECT_FALSE((*db)->Exec("SELECT * FROM a").ok()) << "first migration was not rolled back";
}

TEST_F(StoreTest, CreatingAnExistingResourceIsAlreadyExists) {
  MakeGateway("edge", "standard");
  v1::Gateway again;
  again.set_name("edge");
  again.set_tier("basic");
  EXPECT_EQ(store_->Create(again).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Get<v1::Gateway>("edge")->tier(), "standard");
}

TEST_F(StoreTest, EveryCommittedChangeBumpsTheRevisionAndARejectedOneDoesNot) {
  uint64_t before = Revision();
  v1::Gateway gateway = MakeGateway("edge", "standard");
  EXPECT_EQ(Revision(), before + 1);
  EXPECT_EQ(gateway.etag(), std::to_string(before + 1));

  v1::Gateway bad;
  bad.set_name("other");
  bad.set_tier("no-such-tier");
  EXPECT_EQ(store_->Create(bad).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Revision(), before + 1);

  ASSERT_TRUE(store_->Delete<v1::Gateway>("edge", "").ok());
  EXPECT_EQ(Revision(), before + 2);
}

TEST_F(StoreTest, UpdateWithAStaleEtagIsAbortedAndChangesNothing) {
  v1::Gateway gateway = MakeGateway("edge", "standard");
  auto set_tier = [](std::string tier) {
    return [tier](v1::Gateway& g) {
      g.set_tier(tier);
      return absl::OkStatus();
    };
  };
  absl::StatusOr<v1::Gateway> first =
      store_->Update<v1::Gateway>("edge", gateway.etag(), set_tier("basic"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_NE(first->etag(), gateway.etag());
  absl::StatusOr<v1::Gateway> stale =
      store_->Update<v1::Gateway>("edge", gateway.etag(), set_tier("premium"));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->Get<v1::Gateway>("edge")->tier(), "basic");
  EXPECT_EQ(store_->Delete<v1::Gateway>("edge", gateway.etag()).code(), absl::StatusCode::kAborted);
}

TEST_F(StoreTest, ATierInUseOrBuiltInCannotBeDeleted) {
  v1::Tier custom;
  custom.set_name("custom");
  custom.set_long_lived_connections(true);
  custom.set_idle_timeout_seconds(240);
  ASSERT_TRUE(store_->Create(custom).ok());
  MakeGateway("edge", "custom");
  absl::Status in_use = store_->Delete<v1::Tier>("custom", "");
  EXPECT_EQ(in_use.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(in_use.message().find("\"edge\""), std::string::npos) << in_use;
  EXPECT_EQ(store_->Delete<v1::Tier>("basic", "").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Delete<v1::Gateway>("edge", "").ok());
  EXPECT_TRUE(store_->Delete<v1::Tier>("custom", "").ok());
}

TEST_F(StoreTest, AGatewayServingAnApiCannotBeDeleted) {
  MakeGateway("edge", "standard");
  ASSERT_TRUE(store_->Create(Api("orders", "/orders", {"edge"})).ok());
  absl::Status refused = store_->Delete<v1::Gateway>("edge", "");
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("\"orders\""), std::string::npos);
}

TEST_F(StoreTest, AnSseApiOnAGatewayWithoutLongLivedConnectionsIsRefused) {
  MakeGateway("cheap", "consumption");
  const uint64_t before = Revision();
  absl::StatusOr<v1::Api> created = store_->Create(Api("feed", "/feed", {"cheap"}, true));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::string(created.status().message()).starts_with("api.sse:")) << created.status();
  EXPECT_NE(created.status().message().find("standard"), std::string::npos)
      << "should name tiers that allow streams";
  EXPECT_EQ(store_->Get<v1::Api>("feed").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Revision(), before);
}

TEST_F(StoreTest, MovingAGatewayWithAnSseApiToConsumptionIsRefused) {
  MakeGateway("edge", "standard");
  ASSERT_TRUE(store_->Create(Api("feed", "/feed", {"edge"}, true)).ok());
  absl::StatusOr<v1::Gateway> moved = store_->Update<v1::Gateway>("edge", "", [](v1::Gateway& g) {
    g.set_tier("consumption");
    return absl::OkStatus();
  });
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::string(moved.status().message()).starts_with("gateway.tier:")) << moved.status();
  EXPECT_EQ(store_->Get<v1::Gateway>("edge")->tier(), "standard");
}

TEST_F(StoreTest, TurningOffLongLivedConnectionsOnATierServingSseIsRefused) {
  MakeGateway("edge", "standard");
  ASSERT_TRUE(store_->Create(Api("feed", "/feed", {"edge"}, true)).ok());
  absl::StatusOr<v1::Tier> changed = store_->Update<v1::Tier>("standard", "", [](v1::Tier& t) {
    t.set_long_lived_connections(false);
    return absl::OkStatus();
  });
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Get<v1::Tier>("standard")->long_lived_connections());
}

TEST_F(StoreTest, AnApiNamingAnUnknownGatewayIsNotFoundNamingTheField) {
  MakeGateway("edge", "standard");
  absl::StatusOr<v1::Api> created = store_->Create(Api("orders", "/orders", {"edge", "nope"}));
  EXPECT_EQ(created.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(std::string(created.status().message()).starts_with("api.gateways[1]:"))
      << created.status();
}

TEST_F(StoreTest, TwoApisCannotShareAHostAndPathPrefix) {
  ASSERT_TRUE(store_->Create(Api("orders", "/orders", {})).ok());
  absl::StatusOr<v1::Api> clash = store_->Create(Api("orders2", "/orders", {}));
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(clash.status().message().find("\"orders\""), std::string::npos);
  v1::Api other_host = Api("orders3", "/orders", {});
  other_host.set_host("api.example.com");
  EXPECT_TRUE(store_->Create(other_host).ok());
}

TEST_F(StoreTest, ScopedSettingsNeedTheirApiAndGoWithIt) {
  v1::CacheSetting cache;
  cache.set_scope("api:orders");
  EXPECT_EQ(store_->Create(cache).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Create(Api("orders", "/orders", {})).ok());
  ASSERT_TRUE(store_->Create(cache).ok());
  v1::Policy policy;
  policy.set_scope("operation:orders/list");
  policy.set_xml("<policies/>");
  ASSERT_TRUE(store_->Create(policy).ok());
  ASSERT_TRUE(store_->Delete<v1::Api>("orders", "").ok());
  EXPECT_EQ(store_->Get<v1::CacheSetting>("api:orders").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Get<v1::Policy>("operation:orders/list").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, ListingPagesThroughEveryResourceInNameOrder) {
  std::vector<std::string> seen;
  ListOptions options{3, ""};
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<ListResult<v1::Tier>> page = store_->List<v1::Tier>(options);
    ASSERT_TRUE(page.ok());
    EXPECT_LE(page->items.size(), 3u);
    for (const auto& tier : page->items) seen.push_back(tier.name());
    if (page->next_page_token.empty()) break;
    options.page_token = page->next_page_token;
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(store_->List<v1::Tier>({1001, ""}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, AnApiKeepsItsGatewaysInTheGivenOrderAndUnsetOptionsStayUnset) {
  MakeGateway("b", "standard");
  MakeGateway("a", "standard");
  v1::Api api = Api("orders", "/orders", {"b", "a"});
  api.set_buffer_response(false);
  ASSERT_TRUE(store_->Create(api).ok());
  absl::StatusOr<v1::Api> read = store_->Get<v1::Api>("orders");
  EXPECT_EQ(std::vector<std::string>(read->gateways().begin(), read->gateways().end()),
            (std::vector<std::string>{"b", "a"}));
  EXPECT_TRUE(read->has_buffer_response());
  EXPECT_FALSE(read->buffer_response());
  EXPECT_FALSE(read->has_timeout_seconds());
}

v1::SharedState FullSharedState() {
  v1::SharedState shared;
  shared.set_redis_address("redis.internal:6380");
  shared.set_tls(true);
  shared.set_ca_certificate("CA PEM");
  shared.set_username("apim");
  shared.set_password("s3cret");
  shared.set_database(2);
  return shared;
}

TEST_F(StoreTest, SharedStateSurvivesAReopenAndAnEmptyOneReadsBackAsNone) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  *gateway.mutable_shared_state() = FullSharedState();
  ASSERT_TRUE(store_->Create(gateway).ok());
  MakeGateway("plain", "standard");
  store_.reset();

  store_ = Open();
  ASSERT_NE(store_, nullptr);
  absl::StatusOr<v1::Gateway> stored = store_->Get<v1::Gateway>("edge");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->shared_state().SerializeAsString(), FullSharedState().SerializeAsString())
      << stored->shared_state().DebugString();
  EXPECT_FALSE(store_->Get<v1::Gateway>("plain")->has_shared_state());

  absl::StatusOr<v1::Gateway> cleared =
      store_->Update<v1::Gateway>("edge", stored->etag(), [](v1::Gateway& g) {
        g.mutable_shared_state()->Clear();  // present, but all empty
        return absl::OkStatus();
      });
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_FALSE(cleared->has_shared_state());
  EXPECT_NE(cleared->etag(), stored->etag());
}

TEST_F(StoreTest, TheSnapshotCarriesTheSharedStateWithItsPasswordAndADefaultKeyPrefix) {
  v1::Gateway gateway;
  gateway.set_name("edge");
  gateway.set_tier("standard");
  *gateway.mutable_shared_state() = FullSharedState();
  ASSERT_TRUE(store_->Create(gateway).ok());
  MakeGateway("plain", "standard");

  absl::StatusOr<v1::Snapshot> snapshot = store_->BuildSnapshot("edge");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  v1::SharedState expected = FullSharedState();
  expected.set_key_prefix("apim:edge:");
  EXPECT_EQ(snapshot->shared_state().SerializeAsString(), expected.SerializeAsString())
      << snapshot->shared_state().DebugString();
  EXPECT_FALSE(store_->BuildSnapshot("plain")->has_shared_state());

  ASSERT_TRUE(store_
                  ->Update<v1::Gateway>("edge", "",
                                        [](v1::Gateway& g) {
                                          g.mutable_shared_state()->set_key_prefix("tenant-a:");
                                          return absl::OkStatus();
                                        })
                  .ok());
  snapshot = store_->BuildSnapshot("edge");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->shared_state().key_prefix(), "tenant-a:");
  EXPECT_EQ(snapshot->shared_state().password(), "s3cret");
}

TEST(StoreMigrationTest, ADatabaseFromBeforeSharedStateKeepsItsGatewaysAndTheirEtags) {
  TempDir dir;
  const std::string path = (dir.path() / "apim.db").string();
  {
    // The schema as the release before shared state left it, with a gateway serving an API.
    std::vector<Migration> older;
    for (const Migration& migration : EmbeddedMigrations()) {
      if (migration.version < 7) older.push_back(migration);
    }
    ASSERT_EQ(older.size(), 6u);
    absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(ApplyMigrations(**db, older).ok());
    ASSERT_TRUE((*db)
                    ->Exec("UPDATE store_revision SET revision = 41;"
                           "INSERT INTO gateways (name, description, tier, revision, "
                           "  create_time_ms, update_time_ms) "
                           "  VALUES ('edge', 'from before', 'standard', 40, 1000, 2000);"
                           "INSERT INTO apis (name, path_prefix, backend_url, sse, revision, "
                           "  create_time_ms, update_time_ms) "
                           "  VALUES ('orders', '/orders', 'http://b:9000', 1, 41, 1000, 1000);"
                           "INSERT INTO api_gateways (api, gateway, position) "
                           "  VALUES ('orders', 'edge', 0);")
                    .ok());
  }

  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<v1::Gateway> gateway = (*store)->Get<v1::Gateway>("edge");
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  EXPECT_EQ(gateway->description(), "from before");
  EXPECT_EQ(gateway->etag(), "40") << "a migration is not a change";
  EXPECT_FALSE(gateway->has_shared_state());
  EXPECT_EQ(*(*store)->Revision(), 41u);
  absl::StatusOr<v1::Snapshot> snapshot = (*store)->BuildSnapshot("edge");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->apis_size(), 1);
  EXPECT_FALSE(snapshot->has_shared_state());

  // And the gateway takes a shared state like one created today.
  absl::StatusOr<v1::Gateway> updated =
      (*store)->Update<v1::Gateway>("edge", "40", [](v1::Gateway& g) {
        *g.mutable_shared_state() = FullSharedState();
        return absl::OkStatus();
      });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->shared_state().password(), "s3cret");
}

}  // namespace
}  // namespace apim::store
