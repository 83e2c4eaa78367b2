#pragma once
// The control plane's durable state: one SQLite file holding tiers, certificates, gateways, APIs,
// diagnostic and cache settings and policies. Every write runs in one transaction that also checks
// the references between resources and bumps the store revision; a rejected write changes nothing.
//
// Resources are the apim.v1 protobuf messages. Keys are `name` for tiers, gateways and APIs and
// `scope` for settings and policies. Etags are the store revision of a resource's last write.
// Thread-safe: calls are serialised on one connection (management traffic is light).

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "apim/v1/resources.pb.h"
#include "controlplane/store/sqlite.h"

namespace apim::store {

struct ListOptions {
  uint32_t page_size = 0;  // 0 means the default of 100; at most 1000.
  std::string page_token;  // The last key of the previous page.
};

template <typename Resource>
struct ListResult {
  std::vector<Resource> items;
  std::string next_page_token;  // Empty on the last page.
};

class Store {
 public:
  // Opens (creating if needed) the file and applies pending migrations.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  // Resource is one of apim::v1::Tier, Certificate, Gateway, Api, DiagnosticSetting,
  // CacheSetting, Policy, Product, Subscription.
  // Output-only fields (etag, times, built_in) of the argument are ignored.
  template <typename Resource>
  absl::StatusOr<Resource> Create(const Resource& resource);

  template <typename Resource>
  absl::StatusOr<Resource> Get(std::string_view key);

  template <typename Resource>
  absl::StatusOr<ListResult<Resource>> List(const ListOptions& options);

  // Reads the resource, lets `change` edit it in place (and refuse by returning an error), then
  // writes it back, all in one transaction. A non-empty expected_etag must match the stored one.
  template <typename Resource>
  absl::StatusOr<Resource> Update(std::string_view key, std::string_view expected_etag,
                                  const std::function<absl::Status(Resource&)>& change);

  template <typename Resource>
  absl::Status Delete(std::string_view key, std::string_view expected_etag);

  // The revision of the last committed change.
  absl::StatusOr<uint64_t> Revision();

  // Called after every committed change, a gateway token's too (with the store's lock held:
  // keep it short).
  void SetCommitListener(std::function<void()> listener);

  // Everything one gateway's workers need: its tier, the certificates of its hostnames (keys
  // included), its shared state (password included; key_prefix "apim:<gateway>:" when empty),
  // the APIs it serves, and the settings and policies that apply to them, read in one
  // transaction. Version is the store revision.
  absl::StatusOr<v1::Snapshot> BuildSnapshot(std::string_view gateway);

  // The SHA-256 (hex) of the gateway's worker token. NOT_FOUND if the gateway does not exist,
  // FAILED_PRECONDITION if it has no token yet.
  absl::StatusOr<std::string> GatewayTokenHash(std::string_view gateway);
  absl::Status PutGatewayTokenHash(std::string_view gateway, std::string_view sha256_hex);

  // Control-plane settings that are not resources (no revision bump), e.g. the admin token hash.
  absl::StatusOr<std::optional<std::string>> GetSetting(std::string_view key);
  absl::Status PutSetting(std::string_view key, std::string_view value);

 private:
  explicit Store(std::unique_ptr<Db> db) : db_(std::move(db)) {}

  void Committed();

  std::mutex mu_;
  std::unique_ptr<Db> db_;
  std::function<void()> commit_listener_;
};

}  // namespace apim::store
