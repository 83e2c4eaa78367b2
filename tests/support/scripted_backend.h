#pragma once
// Raw-TCP backends on 127.0.0.1, inside the test process, for what a real server does only by
// accident:
//   LoopbackListener  accepts only when asked, so a test controls the kernel's accept queue (a
//                     listener nobody answers, a full queue that holds a connect in its
//                     handshake).
//   ScriptedBackend   accepts every connection at once, reads each request head (and a small
//                     Content-Length body), records the exact bytes, then does what the test
//                     scripted: answer with given bytes (and maybe close), close without an
//                     answer, reset, or stay silent.
// Every wait is bounded; the destructors close every socket (and join the backend's thread).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace apim::testing {

class LoopbackListener {
 public:
  // Listens with this accept backlog (0 holds one queued connection).
  explicit LoopbackListener(int backlog);
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  uint16_t port() const { return port_; }
  // Accepts the next queued connection within `timeout` (-1 if none came). The listener owns
  // the descriptor and closes it on destruction.
  int Accept(std::chrono::milliseconds timeout);

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> accepted_;
};

class ScriptedBackend {
 public:
  struct Action {
    enum class Kind { kSend, kSendAndClose, kClose, kReset, kSilent };
    // Sends `bytes` and keeps the connection for a next request.
    static Action Send(std::string bytes) { return {Kind::kSend, std::move(bytes)}; }
    // Sends `bytes`, then closes this side (FIN); what the gateway sends after is still recorded.
    static Action SendAndClose(std::string bytes) {
      return {Kind::kSendAndClose, std::move(bytes)};
    }
    static Action Close() { return {Kind::kClose, ""}; }    // FIN without an answer.
    static Action Reset() { return {Kind::kReset, ""}; }    // RST without an answer.
    static Action Silent() { return {Kind::kSilent, ""}; }  // No answer until destroyed.
    Kind kind = Kind::kSilent;
    std::string bytes;
  };
  // Chooses the action from the request's bytes (its head, and its body when that was read).
  using Script = std::function<Action(const std::string& request)>;

  struct Request {
    size_t connection = 0;  // Index of the connection that carried it, in order of acceptance.
    std::string bytes;      // Exactly as received: the head, and a Content-Length body up to
                            // 64 KiB (a larger one is skipped; a chunked one is not understood).
  };

  explicit ScriptedBackend(Script script);
  // The same action for every request.
  explicit ScriptedBackend(Action action);
  ~ScriptedBackend();
  ScriptedBackend(const ScriptedBackend&) = delete;
  ScriptedBackend& operator=(const ScriptedBackend&) = delete;

  uint16_t port() const { return port_; }
  size_t connections() const;
  // Every request received so far, in order of arrival.
  std::vector<Request> requests() const;
  // Waits until connection `index` has been closed (or reset) by the gateway, or reset by this
  // backend's script; false if that has not happened within `timeout`.
  bool AwaitClosedByGateway(size_t index, std::chrono::milliseconds timeout) const;

 private:
  struct Connection;
  void Serve();
  // Takes the complete requests out of `connection`'s unparsed bytes and acts on each.
  void HandleRequests(Connection& connection, size_t index);

  Script script_;
  int listener_ = -1;
  int wake_ = -1;  // An eventfd that ends Serve().
  uint16_t port_ = 0;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Connection> connections_;  // Guarded by mutex_, as is requests_.
  std::vector<Request> requests_;
  std::thread thread_;
};

}  // namespace apim::testing
