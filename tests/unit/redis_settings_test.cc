// Where a worker finds its shared-state server: the --redis URL and the snapshot's setting.
#include "dataplane/shared_state/redis_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace apim::dataplane {
namespace {

using ::testing::HasSubstr;

TEST(RedisSettingsTest, AUrlGivesHostPortUserDatabaseAndTls) {
  absl::StatusOr<RedisSettings> plain = RedisSettingsFromUrl("redis://10.0.0.7:6380");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->host, "10.0.0.7");
  EXPECT_EQ(plain->port, 6380);
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->database, 0u);

  absl::StatusOr<RedisSettings> full =
      RedisSettingsFromUrl("rediss://gateway@cache.internal:6379/3");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->host, "cache.internal");
  EXPECT_TRUE(full->tls);
  EXPECT_EQ(full->username, "gateway");
  EXPECT_EQ(full->database, 3u);
  EXPECT_EQ(full->Describe(), "rediss://cache.internal:6379/3");

  absl::StatusOr<RedisSettings> v6 = RedisSettingsFromUrl("redis://[::1]:6379");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Describe(), "redis://[::1]:6379/0");
}

TEST(RedisSettingsTest, BadUrlsAreRefusedSayingWhy) {
  const auto refused = [](const std::string& url) {
    absl::StatusOr<RedisSettings> settings = RedisSettingsFromUrl(url);
    EXPECT_FALSE(settings.ok()) << url;
    return std::string(settings.status().message());
  };
  EXPECT_THAT(refused("redis://user:secret@h:6379"), HasSubstr("--redis-password-file"));
  EXPECT_THAT(refused("redis://user:secret@h:6379"), ::testing::Not(HasSubstr("secret@")));
  EXPECT_THAT(refused("https://h:6379"), HasSubstr("another scheme"));
  EXPECT_THAT(refused("redis://h"), HasSubstr("no port"));
  EXPECT_THAT(refused("redis://h:6379/zero"), HasSubstr("database number"));
  EXPECT_THAT(refused("redis://h:6379/?db=1"), HasSubstr("query"));
  EXPECT_THAT(refused("not a url"), HasSubstr("not a URL"));
}

TEST(RedisSettingsTest, TheSnapshotsSettingDefaultsThePrefixToTheGateway) {
  v1::Snapshot snapshot;
  snapshot.set_gateway("edge");
  absl::StatusOr<std::shared_ptr<const RedisSettings>> none = RedisSettingsFromSnapshot(snapshot);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);

  v1::SharedState& shared = *snapshot.mutable_shared_state();
  shared.set_redis_address("[::1]:7000");
  shared.set_tls(true);
  shared.set_password("pw");
  shared.set_database(2);
  absl::StatusOr<std::shared_ptr<const RedisSettings>> settings =
      RedisSettingsFromSnapshot(snapshot);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ((*settings)->host, "::1");
  EXPECT_EQ((*settings)->port, 7000);
  EXPECT_EQ((*settings)->password, "pw");
  EXPECT_EQ((*settings)->database, 2u);
  EXPECT_EQ((*settings)->key_prefix, "apim:edge:");

  shared.set_key_prefix("tenant-a:");
  EXPECT_EQ((*RedisSettingsFromSnapshot(snapshot))->key_prefix, "tenant-a:");

  for (const char* bad : {"redis:6379x", "host", ":6379", "host:0", "host:70000", "::1:6379"}) {
    shared.set_redis_address(bad);
    absl::StatusOr<std::shared_ptr<const RedisSettings>> refused =
        RedisSettingsFromSnapshot(snapshot);
    EXPECT_FALSE(refused.ok()) << bad;
    EXPECT_THAT(refused.status().message(), HasSubstr("shared_state.redis_address")) << bad;
  }
}

}  // namespace
}  // namespace apim::dataplane
