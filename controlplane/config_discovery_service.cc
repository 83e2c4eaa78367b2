#include "controlplane/config_discovery_service.h"

#include <google/protobuf/util/message_differencer.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "common/status.h"
#include "common/str_cat.h"
#include "controlplane/admin_token.h"

namespace apim::controlplane {
namespace {

// The content of a snapshot, without its version: a commit that changed nothing this gateway
// serves leaves it equal, and nothing is pushed.
bool SameContent(const v1::Snapshot& a, const v1::Snapshot& b) {
  v1::Snapshot left = a;
  v1::Snapshot right = b;
  left.clear_version();
  right.clear_version();
  return google::protobuf::util::MessageDifferencer::Equals(left, right);
}

}  // namespace

ConfigDiscoveryService::ConfigDiscoveryService(store::Store& store, WorkerRegistry& registry)
    : store_(store), registry_(registry) {}

void ConfigDiscoveryService::NotifyCommitted() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  changed_.notify_all();
}

void ConfigDiscoveryService::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
  }
  changed_.notify_all();
}

grpc::Status ConfigDiscoveryService::Stream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ControlPlaneMessage, v1::WorkerMessage>* stream) {
  v1::WorkerMessage first;
  if (!stream->Read(&first) || !first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "hello: the first message on a stream must be a hello");
  }
  const v1::Hello hello = first.hello();
  if (hello.worker_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello.worker_id: is required");
  }
  absl::StatusOr<std::string> token_hash = store_.GatewayTokenHash(hello.gateway());
  if (!token_hash.ok() || !TokenMatches(*token_hash, hello.gateway_token())) {
    spdlog::warn("worker {} from {} refused: bad token for gateway \"{}\"", hello.worker_id(),
                 context->peer(), hello.gateway());
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        StrCat("hello.gateway_token: not a valid token for gateway \"", hello.gateway(), "\""));
  }
  const uint64_t serial = registry_.Connected(hello, context->peer());
  spdlog::info("worker {} joined gateway \"{}\" holding version {}", hello.worker_id(),
               hello.gateway(), hello.version());

  // ACKs and NACKs arrive on their own thread; the stream may be read and written at once.
  bool reader_done = false;
  std::thread reader([&] {
    v1::WorkerMessage message;
    while (stream->Read(&message)) {
      if (message.has_ack()) {
        registry_.Acked(hello.worker_id(), message.ack().version());
      } else if (message.has_nack()) {
        spdlog::warn("worker {} refused version {}: {}", hello.worker_id(),
                     message.nack().version(), message.nack().error());
        registry_.Nacked(hello.worker_id(), message.nack().version(), message.nack().error());
      }
    }
    {
      std::lock_guard lock(mu_);
      reader_done = true;
    }
    changed_.notify_all();
  });

  grpc::Status result = grpc::Status::OK;
  std::optional<v1::Snapshot> last_sent;
  uint64_t nonce = 0;
  uint64_t seen_generation = 0;
  bool first_round = true;
  std::unique_lock lock(mu_);
  while (!reader_done && !shutting_down_ && !context->IsCancelled()) {
    if (first_round || generation_ != seen_generation) {
      first_round = false;
      seen_generation = generation_;
      lock.unlock();
      absl::StatusOr<v1::Snapshot> snapshot = store_.BuildSnapshot(hello.gateway());
      if (!snapshot.ok()) {
        result =
            grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                         StrCat("gateway \"", hello.gateway(),
                                "\" cannot be served: ", std::string(snapshot.status().message())));
        lock.lock();
        break;
      }
      const bool worker_has_it = !last_sent && snapshot->version() == hello.version();
      if (!worker_has_it && !(last_sent && SameContent(*last_sent, *snapshot))) {
        v1::ControlPlaneMessage message;
        *message.mutable_snapshot() = *snapshot;
        message.set_nonce(std::to_string(++nonce));
        if (!stream->Write(message)) {
          lock.lock();
          break;
        }
      }
      last_sent = *std::move(snapshot);
      lock.lock();
      continue;
    }
    // Woken by a commit, the reader ending, or shutdown; the timeout notices cancellation.
    changed_.wait_for(lock, std::chrono::seconds(1));
  }
  lock.unlock();
  context->TryCancel();  // Unblocks the reader if the stream ended from this side.
  reader.join();
  registry_.Disconnected(hello.worker_id(), serial);
  spdlog::info("worker {} left gateway \"{}\"", hello.worker_id(), hello.gateway());
  return result;
}

}  // namespace apim::controlplane
