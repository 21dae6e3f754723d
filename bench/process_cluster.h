// A Tessera cluster of real processes started node by node (a scheduler,
// servers, workers running `--program=train` on a job file), for benchmarks
// that kill and replace nodes or watch them from outside: recovery_bench,
// soak_bench. Built on the e2e tests' process helpers (tests/e2e/).
//
// Example:
//   ProcessCluster cluster({.tessera = bin, .dir = dir, .job = dir + "/job.yaml",
//                           .servers = 3, .workers = 2});
//   if (!cluster.Start()) ...;
//   ::kill(cluster.server(1).pid, SIGKILL);
//   cluster.StartServer(1);  // a replacement takes rank 1 back
#ifndef TESSERA_BENCH_PROCESS_CLUSTER_H_
#define TESSERA_BENCH_PROCESS_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace tessera::bench {

struct ProcessNode {
  std::string name;  // "scheduler", "server-1", "worker-0"
  pid_t pid = -1;
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
  ~ProcessCluster();  // SIGKILLs every node still running.

  // Starts the scheduler, then every server and worker; true once
  // cluster.json lists every node's metrics port.
  bool Start();
  // Starts a server asking for `rank` (a replacement once that rank died);
  // it replaces server(rank) in nodes(). Its metrics port is unknown (0).
  bool StartServer(int rank);
  // Waits for every node still running to exit; true if all exited 0 (with
  // `any_exit_code`: exited at all, not killed by a signal or hung). Nodes
  // that exit get pid -1.
  bool WaitAll(std::chrono::seconds timeout, bool any_exit_code = false);

  ProcessNode& scheduler() { return nodes_[0]; }
  ProcessNode& server(int rank) { return nodes_[1 + rank]; }
  ProcessNode& worker(int rank) { return nodes_[1 + spec_.servers + rank]; }
  std::vector<ProcessNode>& nodes() { return nodes_; }
  const ProcessClusterSpec& spec() const { return spec_; }

 private:
  std::vector<std::string> NodeArgs(const std::string& role) const;

  const ProcessClusterSpec spec_;
  std::string scheduler_address_;
  std::vector<ProcessNode> nodes_;
};

// `tessera gen --rows rows --seed 7` into `out`; false (log printed) on failure.
bool GenerateData(const std::string& tessera, const std::string& out, int rows);

// name -> value of every unlabelled sample on http://127.0.0.1:port/metrics
// (empty if unreachable).
std::map<std::string, double> ScrapeMetrics(int port);

// Nearest-rank percentile; NaN for no samples.
double Percentile(std::vector<double> v, double q);

// $TESSERA_BIN, else tools/tessera next to this executable's directory.
std::string DefaultTesseraBinary();

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_PROCESS_CLUSTER_H_
