// The scheduler: membership, the shard map, table configuration, barriers,
// heartbeats and orderly shutdown.
//
// Protocol (see protocols/README.md): nodes register; once every expected
// server and worker has registered, the scheduler sends the ClusterView to the
// servers, then ConfigureTables; when every server acknowledged its tables it
// sends the ClusterView to the workers, and the cluster is running.
//
// Threading: all protocol work runs on the Messenger's receive thread; a
// liveness thread (optional) checks heartbeats. Public methods are
// thread-safe.
#ifndef TESSERA_SCHEDULER_SCHEDULER_NODE_H_
#define TESSERA_SCHEDULER_SCHEDULER_NODE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/table_config.h"
#include "common/transport.h"
#include "protocols/codec.h"
#include "protocols/messenger.h"
#include "scheduler/barrier.h"
#include "scheduler/data_assigner.h"
#include "scheduler/step_clock.h"
#include "scheduler/failure_detector.h"
#include "scheduler/membership.h"

namespace tessera::scheduler {

struct SchedulerOptions {
  // Data-plane endpoint to bind ("tcp://0.0.0.0:0" picks a port).
  std::string bind_endpoint = "tcp://127.0.0.1:0";
  int num_servers = 1;
  int num_workers = 1;
  uint32_t num_slots = kDefaultNumSlots;
  std::vector<TableConfig> tables;
  std::string token;
  // Nodes send a heartbeat every interval; a node silent for `timeout` is
  // reported dead.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{5000};
  // Run a thread that checks liveness every heartbeat_interval/2. Tests that
  // drive a SimulatedClock turn it off and call CheckLiveness() themselves.
  bool liveness_thread = true;
  // Training data handed to workers as they ask (empty: workers are told
  // there is none), for `epochs` passes; static order makes the assignment
  // a function of the worker count (reproducible sync runs).
  std::vector<DataChunk> data_chunks;
  uint32_t epochs = 1;
  bool static_data_order = false;
  // ssp/sync: a worker may start step t+1 once every running worker finished
  // step t - staleness (sync: 0).
  uint32_t staleness = 0;
};

class SchedulerNode {
 public:
  // `transport`, `clock` and `metrics` are borrowed and must outlive this.
  SchedulerNode(SchedulerOptions options, Transport* transport, const Clock* clock,
                MetricsRegistry* metrics);
  ~SchedulerNode();  // Stop()s.

  // Binds and starts serving. Returns the bound endpoint.
  StatusOr<std::string> Start();
  void Stop();

  // True once every node registered and the servers acknowledged the tables.
  bool running() const;
  // Blocks until the cluster is running or the deadline passes.
  Status WaitRunning(SteadyTime deadline) const;
  // Blocks until a node asked for shutdown (all nodes were told) or deadline.
  Status WaitForShutdown(SteadyTime deadline) const;
  // Orders every node to stop.
  void ShutdownCluster(const std::string& reason);

  // Checks heartbeats now; returns the nodes newly declared dead.
  std::vector<NodeId> CheckLiveness();
  std::optional<protocol::ClusterView> cluster_view() const;
  std::vector<protocol::NodeInfo> nodes() const;
  std::vector<NodeId> dead_nodes() const;

 private:
  void Handle(protocol::DecodedMessage msg);
  void HandleRegister(const protocol::DecodedMessage& msg);
  void HandleBarrier(protocol::DecodedMessage msg);
  void HandleShutdown(const protocol::DecodedMessage& msg);
  void HandleDataRequest(const protocol::DecodedMessage& msg);
  void HandleClock(protocol::DecodedMessage msg);
  void ReplyClock(const std::vector<protocol::DecodedMessage>& waiters)
      TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnAllRegistered() TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnTablesAcked(NodeId server, Status status);
  void BroadcastShutdown(const std::string& reason) TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LivenessLoop();

  const SchedulerOptions options_;
  Transport* const transport_;
  const Clock* const clock_;
  MetricsRegistry* const metrics_;
  protocol::Messenger messenger_;
  Counter& heartbeats_;
  Counter& declared_dead_;
  Gauge& alive_nodes_;
  Gauge& chunks_completed_;
  Gauge& chunks_total_;
  Notification stop_liveness_;
  std::thread liveness_thread_;

  mutable Mutex mu_;
  // protected by mu_
  Membership membership_ TESSERA_GUARDED_BY(mu_);
  FailureDetector detector_ TESSERA_GUARDED_BY(mu_);
  Barrier<protocol::DecodedMessage> worker_barrier_ TESSERA_GUARDED_BY(mu_);
  Barrier<protocol::DecodedMessage> all_barrier_ TESSERA_GUARDED_BY(mu_);
  DataAssigner data_ TESSERA_GUARDED_BY(mu_);
  StepClock<protocol::DecodedMessage> step_clock_ TESSERA_GUARDED_BY(mu_);
  std::optional<protocol::ClusterView> view_ TESSERA_GUARDED_BY(mu_);
  int servers_configured_ TESSERA_GUARDED_BY(mu_) = 0;
  bool running_ TESSERA_GUARDED_BY(mu_) = false;
  bool shutdown_ TESSERA_GUARDED_BY(mu_) = false;
  std::vector<NodeId> dead_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_SCHEDULER_NODE_H_
