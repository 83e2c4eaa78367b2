#include "dataplane/config/snapshot_store.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>

#include "common/str_cat.h"

namespace apim::dataplane {

absl::StatusOr<std::shared_ptr<const RuntimeSnapshot>> RuntimeSnapshot::Compile(
    v1::Snapshot snapshot) {
  absl::StatusOr<RouteTable> routes = RouteTable::Build(snapshot);
  if (!routes.ok()) return routes.status();
  absl::StatusOr<std::shared_ptr<const ServedCertificates>> certificates =
      ServedCertificates::Load(snapshot.certificates());
  if (!certificates.ok()) return certificates.status();
  absl::StatusOr<std::shared_ptr<const RedisSettings>> shared_state =
      RedisSettingsFromSnapshot(snapshot);
  if (!shared_state.ok()) return shared_state.status();
  auto runtime = std::make_shared<RuntimeSnapshot>();
  runtime->certificates = *std::move(certificates);
  runtime->shared_state = *std::move(shared_state);
  runtime->source = std::move(snapshot);
  runtime->routes = *std::move(routes);
  return std::shared_ptr<const RuntimeSnapshot>(std::move(runtime));
}

absl::StatusOr<v1::Snapshot> ReadSnapshotFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(StrCat("config file ", path, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  v1::Snapshot snapshot;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &snapshot, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        StrCat("config file ", path, ": ", std::string(parsed.message())));
  }
  return snapshot;
}

}  // namespace apim::dataplane
