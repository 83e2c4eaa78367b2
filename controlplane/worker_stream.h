#pragma once
// One worker's ConfigDiscovery stream, on gRPC's callback API so that an open stream costs no
// thread. Its reactions (a message read, a write done, a cancel) only record what happened and
// ask the pusher for attention; every operation on the stream (read, write, finish) is issued by
// the ConfigDiscoveryService's one pusher thread, in Advance. One thread issuing operations means
// no write can follow the finish and no lock is held while gRPC runs a reaction inline.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "apim/v1/config_discovery.grpc.pb.h"
#include "controlplane/store/store.h"
#include "controlplane/worker_registry.h"

namespace apim::controlplane {

// What the pusher knows in one round, read from the store once per gateway however many of its
// workers are served in the round.
class PushRound {
 public:
  explicit PushRound(store::Store& store) : store_(store) {}

  const absl::StatusOr<std::string>& TokenHash(const std::string& gateway);
  const absl::StatusOr<v1::Snapshot>& Snapshot(const std::string& gateway);

 private:
  store::Store& store_;
  std::map<std::string, absl::StatusOr<std::string>> token_hashes_;
  std::map<std::string, absl::StatusOr<v1::Snapshot>> snapshots_;
};

class WorkerStream final
    : public grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControlPlaneMessage>,
      public std::enable_shared_from_this<WorkerStream> {
 public:
  struct Callbacks {
    // The stream needs the pusher's attention (called from gRPC threads, without locks held).
    std::function<void(std::shared_ptr<WorkerStream>)> attention;
    // The stream is over and gRPC is done with it.
    std::function<void(WorkerStream*)> done;
  };

  // A stream that keeps itself alive until gRPC is done with it; its hello must come by
  // `hello_deadline`. Call ReadHello once the pusher can find it.
  static std::shared_ptr<WorkerStream> Create(grpc::CallbackServerContext& context,
                                              WorkerRegistry& registry, Callbacks callbacks,
                                              std::chrono::steady_clock::time_point hello_deadline);
  void ReadHello() { StartRead(); }
  // A stream that is ended at once: it will not be served (no room, shutting down).
  static WorkerStream* Refuse(grpc::CallbackServerContext& context, Callbacks callbacks,
                              grpc::Status status);

  // Pusher thread only. Moves the stream along: authenticates its hello against the gateway's
  // token, ends it if its peer went away, its hello is late or its token no longer valid, and,
  // when `offer` is set (a commit happened, or it just joined), sends the gateway's snapshot if
  // it differs from what the worker holds.
  void Advance(PushRound& round, bool offer, std::chrono::steady_clock::time_point now);
  // Pusher thread only.
  void End(grpc::Status status);
  bool awaiting_hello() const { return phase_ == Phase::kAwaitingHello; }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  WorkerStream(std::string peer, WorkerRegistry* registry, Callbacks callbacks,
               std::chrono::steady_clock::time_point hello_deadline);

 private:
  enum class Phase { kAwaitingHello, kJoined, kEnded };

  void Join(PushRound& round);
  void Offer(const v1::Snapshot& snapshot);
  void StartRead();
  void StartWriteOfLatest();
  void AskForAttention();
  WorkerRegistry::Key key() const { return {hello_.gateway(), hello_.worker_id()}; }

  const std::string peer_;
  WorkerRegistry* registry_;  // Null for a refused stream.
  const Callbacks callbacks_;
  const std::chrono::steady_clock::time_point hello_deadline_;
  std::shared_ptr<WorkerStream> self_;  // Held until OnDone.

  // Set by reactions, read by the pusher.
  std::mutex mu_;
  bool read_outstanding_ = false;
  bool write_outstanding_ = false;
  bool peer_gone_ = false;
  bool read_wanted_ = false;
  std::optional<v1::WorkerMessage> first_message_;
  v1::WorkerMessage incoming_;

  // The pusher's own (OnDone reads them after the finish it issued).
  Phase phase_ = Phase::kAwaitingHello;
  v1::Hello hello_;
  std::string token_hash_;
  uint64_t serial_ = 0;
  std::string end_reason_;
  std::optional<v1::Snapshot> latest_;  // The newest snapshot the worker is to hold.
  bool latest_unsent_ = false;
  uint64_t nonce_ = 0;
  v1::ControlPlaneMessage outgoing_;
};

}  // namespace apim::controlplane
