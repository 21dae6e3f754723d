// A whole cluster (scheduler, servers, workers) in one process, for cluster
// tests: ps-lite's local.sh, as objects. Nodes talk over InProcTransport
// (deterministic, no sockets) or over real ZeroMQ on tcp://127.0.0.1.
//
// Example:
//   SimulatedClock clock;
//   InProcCluster c({.num_servers = 2, .num_workers = 3, .tables = {...}}, &clock);
//   ASSERT_OK(c.Start());
//   c.worker(0).kv().Pull(...);
//   c.KillServer(1);
//
// Thread-compatible: drive it from the test thread.
#ifndef TESSERA_TESTS_TESTING_IN_PROC_CLUSTER_H_
#define TESSERA_TESTS_TESTING_IN_PROC_CLUSTER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/faulty_transport.h"
#include "common/inproc_transport.h"
#include "common/metrics.h"
#include "common/table_config.h"
#include "common/transport.h"
#include "scheduler/scheduler_node.h"
#include "server/server_node.h"
#include "worker/worker_node.h"

namespace tessera::testing {

enum class ClusterTransport { kInProc, kZmqTcp };

struct InProcClusterOptions {
  int num_servers = 2;
  int num_workers = 2;
  uint32_t replication = 1;  // cluster.replication
  std::vector<TableConfig> tables;
  // Faults injected on every worker's outgoing messages once the cluster is
  // running (FaultyTransport around its transport, seeded with 1000 +
  // rank); none by default.
  std::optional<FaultConfig> worker_faults;
  // Wrap every server's transport in a FaultyTransport (PartitionServer).
  bool faulty_servers = false;
  // Faults injected on every server's outgoing messages once the cluster is
  // running (seeded with 2000 + rank; implies faulty_servers).
  std::optional<FaultConfig> server_faults;
  // SchedulerOptions::request_timeout (0: its default).
  std::chrono::milliseconds request_timeout{0};
  ClusterTransport transport = ClusterTransport::kInProc;
  std::string token = "in-proc-cluster-token";
  // Heartbeat threads are off by default: tests send heartbeats with
  // SendHeartbeats() and advance the SimulatedClock.
  bool heartbeat_threads = false;
  std::chrono::milliseconds heartbeat_interval{100};
  std::chrono::milliseconds heartbeat_timeout{1000};
  // Training: data the scheduler hands out, epochs, order and staleness.
  std::vector<scheduler::DataChunk> data_chunks;
  uint32_t epochs = 1;
  bool static_data_order = false;
  uint32_t staleness = 0;
  bool async = false;
  bool streaming = false;
  // Published versions and resuming (scheduler_node.h).
  scheduler::PublishOptions publish;
  std::optional<scheduler::ResumeOptions> resume;
};

class InProcCluster {
 public:
  // `clock` is borrowed and must outlive the cluster.
  InProcCluster(InProcClusterOptions options, const Clock* clock);
  ~InProcCluster();  // Stop()s.

  // Starts every node and waits until the workers have the cluster view.
  Status Start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void Stop();

  scheduler::SchedulerNode& scheduler() { return *scheduler_; }
  server::ServerNode& server(int i) { return *servers_[i]; }
  worker::WorkerNode& worker(int i) { return *workers_[i]; }
  MetricsRegistry& server_metrics(int i) { return *server_metrics_[i]; }
  MetricsRegistry& scheduler_metrics() { return scheduler_metrics_; }
  // The scheduler's bound endpoint (after Start), for clients that are not
  // members (e.g. `tessera forget`'s).
  const std::string& scheduler_endpoint() const { return scheduler_endpoint_; }
  // A fresh transport on the cluster's network (to play a rogue peer).
  std::unique_ptr<Transport> NewTransport();

  // Stops server i abruptly (its transport goes away; peers are not told).
  void KillServer(int i);
  // Cuts server i off from the scheduler (REQUIRES: faulty_servers): it
  // keeps running and serving workers and peers, but its heartbeats are
  // lost (and SendHeartbeats skips it), so it is declared dead while alive.
  void PartitionServerFromScheduler(int i);
  // Cuts servers a and b off from each other (REQUIRES: faulty_servers).
  void PartitionServers(int a, int b);
  // Starts a new server in place of killed server i (it registers for rank
  // i; the scheduler hands it the rank's slots when replication allows).
  Status ReplaceServer(int i);
  // Every live server and worker sends one heartbeat; returns once the
  // scheduler acknowledged them all.
  void SendHeartbeats();
  // Ends the injected faults (worker_faults, server_faults) and releases
  // every held message.
  void HealFaults();
  // What the faulty transports did, summed over the nodes.
  FaultCounters fault_counters() const;
  MetricsRegistry& worker_metrics(int i) { return *worker_metrics_[i]; }

 private:
  const InProcClusterOptions options_;
  const Clock* const clock_;
  InProcNetwork network_;
  MetricsRegistry scheduler_metrics_;
  std::vector<std::unique_ptr<MetricsRegistry>> server_metrics_;
  std::vector<std::unique_ptr<MetricsRegistry>> worker_metrics_;
  std::vector<std::unique_ptr<Transport>> transports_;
  std::unique_ptr<scheduler::SchedulerNode> scheduler_;
  std::vector<std::unique_ptr<server::ServerNode>> servers_;
  std::vector<std::unique_ptr<worker::WorkerNode>> workers_;
  std::vector<bool> server_alive_;
  std::vector<FaultyTransport*> worker_faulty_;  // owned by transports_
  std::vector<FaultyTransport*> server_faulty_;  // owned by transports_
  protocol::MemberOptions member_;  // what every node was started with
  std::string scheduler_endpoint_;
};

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_TESTING_IN_PROC_CLUSTER_H_
