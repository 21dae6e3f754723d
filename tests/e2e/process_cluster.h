// A Tessera cluster of real processes started node by node, as Kubernetes
// runs them (a scheduler, servers, workers running `--program=train` on a
// job file), for the e2e tests and benchmarks that kill and replace nodes or
// watch them from outside: server_failure_test, worker_failure_test,
// recovery_bench, soak_bench. Every node listens on loopback with any free
// port; logs, the scheduler's address file and cluster.json go to the
// spec's directory. Built on process_util.h.
//
// Thread-compatible. The cluster owns its processes: the destructor
// SIGKILLs and reaps every node still running.
//
// Example:
//   ProcessCluster cluster({.tessera = bin, .dir = dir, .job = dir + "/job.yaml",
//                           .servers = 3, .workers = 2});
//   if (Status s = cluster.Start(); !s.ok()) ...;
//   ::kill(cluster.server(1).pid, SIGKILL);
//   cluster.StartServer(1);  // a replacement takes rank 1 back
#ifndef TESSERA_TESTS_E2E_PROCESS_CLUSTER_H_
#define TESSERA_TESTS_E2E_PROCESS_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace tessera::testing {

struct ProcessNode {
  std::string name;  // "scheduler", "server-1", "worker-0"; its log is <dir>/<name>.log
  pid_t pid = -1;    // -1 once it was reaped
  int metrics_port = 0;
};

struct ProcessClusterSpec {
  std::string tessera;  // the binary
  std::string dir;      // logs, address and cluster files
  std::string job;      // the job file (cluster sizes must match)
  int servers = 3;
  int workers = 2;
  int heartbeat_interval_ms = 100;
  int heartbeat_timeout_ms = 300;
};

class ProcessCluster {
 public:
  explicit ProcessCluster(ProcessClusterSpec spec) : spec_(std::move(spec)) {}
  ~ProcessCluster() { KillAll(); }

  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts the scheduler, then every server and worker; OK once
  // cluster.json lists every node's metrics port. Otherwise an error that
  // says which step failed (the nodes' logs say why).
  Status Start();
  // Starts a server asking for `rank` (a replacement once that rank died);
  // it replaces server(rank) in nodes(). Its metrics port is unknown (0).
  bool StartServer(int rank);
  // Waits for every node still running to exit; true if all exited 0 (with
  // `any_exit_code`: exited at all, not killed by a signal or hung). Nodes
  // that exit get pid -1.
  bool WaitAll(std::chrono::seconds timeout, bool any_exit_code = false);
  // SIGKILLs every node still running and reaps it (pid -1).
  void KillAll();

  ProcessNode& scheduler() { return nodes_[0]; }
  ProcessNode& server(int rank) { return nodes_[1 + rank]; }
  ProcessNode& worker(int rank) { return nodes_[1 + spec_.servers + rank]; }
  std::vector<ProcessNode>& nodes() { return nodes_; }
  const ProcessClusterSpec& spec() const { return spec_; }

  std::string LogPath(const ProcessNode& node) const;
  // Every node's log, each under a "==== <path> ====" line (for failure
  // messages).
  std::string Logs() const;

 private:
  std::vector<std::string> NodeArgs(const std::string& role) const;

  const ProcessClusterSpec spec_;
  std::string scheduler_address_;
  std::vector<ProcessNode> nodes_;
};

// name -> value of every unlabelled sample on http://127.0.0.1:port/metrics
// (empty if unreachable).
std::map<std::string, double> ScrapeMetrics(int port);

// The unlabelled sample `name` on http://127.0.0.1:port/metrics; nullopt if
// unreachable or absent.
std::optional<double> ScrapeMetric(int port, const std::string& name);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_E2E_PROCESS_CLUSTER_H_
