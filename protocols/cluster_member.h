// What every non-scheduler node does to be part of a cluster: bind, register
// with the scheduler, receive the cluster view (and connect to the peers it
// lists), send heartbeats, take part in barriers, and learn about shutdown.
// Servers and workers each own one and forward kClusterView and
// kShutdownRequest messages to it.
//
// Thread-safe. The heartbeat thread starts when the first view arrives and
// is joined by Stop().
#ifndef TESSERA_PROTOCOLS_CLUSTER_MEMBER_H_
#define TESSERA_PROTOCOLS_CLUSTER_MEMBER_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "common/deadline.h"
#include "common/mutex.h"
#include "common/transport.h"
#include "protocols/codec.h"
#include "protocols/messenger.h"

namespace tessera::protocol {

struct MemberOptions {
  Role role = Role::kWorker;
  // Endpoint to bind; "tcp://0.0.0.0:0" binds every interface on a free port.
  std::string bind_endpoint = "tcp://127.0.0.1:0";
  // Host other nodes use to reach this one (replaces 0.0.0.0 / * in the
  // bound endpoint).
  std::string advertise_host = "127.0.0.1";
  std::string scheduler_endpoint;
  int32_t requested_rank = kUnassignedRank;
  int32_t metrics_port = 0;
  // Send heartbeats from a thread at the view's interval. Tests that drive a
  // SimulatedClock turn it off and call SendHeartbeat().
  bool heartbeat_thread = true;
};

// Turns a bound endpoint into one peers can connect to.
std::string AdvertisedEndpoint(const std::string& bound, const std::string& host);

class ClusterMember {
 public:
  // `messenger` is borrowed and must outlive this; it must be started.
  ClusterMember(MemberOptions options, Messenger* messenger);
  ~ClusterMember();  // Stop()s.

  // Binds this node's endpoint. Returns the advertised endpoint.
  StatusOr<std::string> Bind();
  // Registers with the scheduler and waits for the assigned id (set as the
  // messenger's identity). REQUIRES: Bind() succeeded.
  StatusOr<NodeId> Register(SteadyTime deadline);

  // Message hooks, called by the role's request handler.
  void OnClusterView(ClusterView view);
  void OnShutdown(const std::string& reason);

  // Blocks until the first cluster view arrived (or shutdown / deadline).
  StatusOr<ClusterView> WaitForView(SteadyTime deadline) const;
  std::optional<ClusterView> view() const;
  // Blocks until the scheduler ordered a shutdown or the deadline passes.
  Status WaitForShutdown(SteadyTime deadline) const;
  bool shutdown_requested() const;

  // What every later heartbeat reports (NodeStats, for `tessera status`);
  // an empty function reports nothing. Called on the heartbeat thread (or
  // the caller of SendHeartbeat) and must not block. Once this returns, the
  // previous provider is no longer running, so an owner may clear it (pass
  // {}) before it is destroyed.
  void SetStatsProvider(std::function<NodeStats()> provider);

  // Sends a heartbeat without waiting for the scheduler's ack.
  Status SendHeartbeat();
  // Sends a heartbeat and waits until the scheduler acknowledged it.
  Status HeartbeatAndWait(SteadyTime deadline);
  // Waits at the scheduler's barrier for `group`.
  Status Barrier(BarrierGroup group, SteadyTime deadline);
  // Asks the scheduler to stop the whole cluster and waits for its ack.
  Status RequestClusterShutdown(const std::string& reason, SteadyTime deadline);
  // A blocking request/reply round trip through the messenger. Returns
  // Cancelled as soon as a shutdown is ordered (OnShutdown) and
  // DeadlineExceeded at the deadline.
  StatusOr<DecodedMessage> Call(NodeId to, HeaderEncoder encode, SteadyTime deadline);

  NodeId id() const { return messenger_->self(); }
  const std::string& endpoint() const { return endpoint_; }
  void Stop();

 private:
  void HeartbeatLoop(std::chrono::milliseconds interval);
  // A heartbeat with the provider's stats, if any.
  Frame EncodeBeat(const Header& header);

  const MemberOptions options_;
  Messenger* const messenger_;
  std::string endpoint_;
  Notification stop_heartbeats_;
  std::thread heartbeat_thread_;

  // Held while the provider runs, so clearing it waits for a running call.
  Mutex stats_mu_;
  std::function<NodeStats()> stats_provider_ TESSERA_GUARDED_BY(stats_mu_);

  mutable Mutex mu_;
  // protected by mu_
  std::optional<ClusterView> view_ TESSERA_GUARDED_BY(mu_);
  bool shutdown_ TESSERA_GUARDED_BY(mu_) = false;
  std::string shutdown_reason_ TESSERA_GUARDED_BY(mu_);
};

// The shutdown-signal policy of a server or worker process, a callback for
// ShutdownSignalWatcher (common/shutdown_signals.h): before `*started`
// (nothing to hand over yet) or when the signal insists, exit now with
// 128 + signo; with `first_signal_drains` (a streaming job) the first signal
// only logs, since the scheduler drains the stream and stops the cluster;
// otherwise `member` leaves: OnShutdown("<role> received SIGTERM").
// `started` and `member` are borrowed and must outlive the watcher.
std::function<void(int signo, bool insist)> MemberSignalHandler(const std::string& role,
                                                                const std::atomic<bool>* started,
                                                                bool first_signal_drains,
                                                                ClusterMember* member);

}  // namespace tessera::protocol

#endif  // TESSERA_PROTOCOLS_CLUSTER_MEMBER_H_
