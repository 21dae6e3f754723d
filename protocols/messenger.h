// Request/reply mechanics shared by every role, on top of a Transport:
// request ids, matching replies to pending requests, cluster-token checks,
// and counting of rejected input. Business logic stays in the roles.
//
// Threading: one receive thread (started by Start(), joined by Stop()) runs
// the request handler and the reply callbacks; both must not block. Send*()
// may be called from any thread. Thread-safe.
//
// Example:
//   Messenger m({.transport = t, .token = token, .metrics = &metrics, .role = "worker"},
//               [](DecodedMessage msg) { /* a request or one-way message */ });
//   m.Start();
//   m.SendRequest(kSchedulerId, [&](const Header& h) { return EncodeHeartbeat(h); },
//                 [](StatusOr<DecodedMessage> reply) { ... });
#ifndef TESSERA_PROTOCOLS_MESSENGER_H_
#define TESSERA_PROTOCOLS_MESSENGER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "common/deadline.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/transport.h"
#include "protocols/codec.h"

namespace tessera::protocol {

struct MessengerOptions {
  Transport* transport = nullptr;  // borrowed; must outlive the Messenger
  std::string token;               // cluster token every message must carry
  MetricsRegistry* metrics = nullptr;  // borrowed; required
  std::string role = "node";       // metric name prefix: tessera_<role>_...
};

// Called on the receive thread for every verified non-reply message.
using RequestHandler = std::function<void(DecodedMessage msg)>;
// Called on the receive thread with the reply, or with an error: Cancelled
// if the Messenger stopped, DeadlineExceeded if the request's timeout passed
// first (a reply arriving later is dropped and counted as an orphan). Called
// exactly once unless the request was cancelled first.
using ReplyCallback = std::function<void(StatusOr<DecodedMessage> reply)>;
using HeaderEncoder = absl::FunctionRef<Frame(const Header&)>;

class Messenger {
 public:
  Messenger(MessengerOptions options, RequestHandler handler);
  ~Messenger();  // Stop()s.
  Messenger(const Messenger&) = delete;
  Messenger& operator=(const Messenger&) = delete;

  void Start();
  // Shuts the transport down, joins the receive thread and fails every
  // pending request with Cancelled. Idempotent.
  void Stop();

  // The identity put in outgoing headers (unassigned until registration).
  void set_self(NodeId self);
  NodeId self() const;
  const std::string& token() const { return options_.token; }

  // Encodes a request with a fresh request id and sends it to `to`; `done`
  // gets the reply. Returns the request id (usable with Cancel), or the send
  // error (then `done` is not called). A positive `timeout` bounds the wait
  // for the reply: past it, `done` gets DeadlineExceeded (within about
  // kTimeoutGranularity). Retrying is the caller's decision: only it knows
  // whether the request is idempotent.
  StatusOr<uint64_t> SendRequest(NodeId to, HeaderEncoder encode, ReplyCallback done,
                                 std::chrono::milliseconds timeout = {});
  static constexpr std::chrono::milliseconds kTimeoutGranularity{20};
  // Sends a one-way message (no reply expected).
  Status SendOneWay(NodeId to, HeaderEncoder encode);
  // Replies to `request` with `status` and the body made by `encode`.
  Status Reply(const DecodedMessage& request, HeaderEncoder encode, Status status = OkStatus());
  // Replies with an error status and an empty Ack body.
  Status ReplyError(const DecodedMessage& request, Status status);
  // Forgets a pending request: its callback will not run after this returns.
  // May be called from a reply callback.
  void Cancel(uint64_t request_id);

  Transport* transport() const { return options_.transport; }

 private:
  struct Pending {
    ReplyCallback done;
    NodeId to;
    SteadyTime expires = SteadyTime::max();  // max: no timeout
  };

  void ReceiveLoop();
  void Dispatch(Message message);
  // Fails the requests whose timeout passed (receive thread).
  void ExpireRequests(SteadyTime now);
  // How long the receive thread may block: shorter while timeouts pend.
  SteadyTime NextWake(SteadyTime now) const;
  bool TokenMatches(const std::string& token) const;

  const MessengerOptions options_;
  const RequestHandler handler_;
  std::atomic<uint64_t> next_request_id_{1};
  std::thread thread_;
  std::atomic<bool> stopped_{false};

  Counter& received_;
  Counter& sent_;
  Counter& rejected_malformed_;
  Counter& rejected_token_;
  Counter& rejected_version_;
  Counter& orphan_replies_;
  Counter& timeouts_;

  mutable Mutex mu_;
  // protected by mu_
  NodeId self_ TESSERA_GUARDED_BY(mu_){Role::kWorker, kUnassignedRank};
  absl::flat_hash_map<uint64_t, Pending> pending_ TESSERA_GUARDED_BY(mu_);
  // The pending requests with a timeout, by expiry.
  std::set<std::pair<SteadyTime, uint64_t>> expiries_ TESSERA_GUARDED_BY(mu_);
  // Serializes reply callbacks with Cancel(): a cancelled callback never runs
  // after Cancel() returns.
  Mutex callback_mu_;
  // The thread running a reply callback (holding callback_mu_), if any.
  std::atomic<std::thread::id> callback_thread_{};
};

}  // namespace tessera::protocol

#endif  // TESSERA_PROTOCOLS_MESSENGER_H_
