// Entry function of a worker process, and the worker-program seam.
//
// A worker process joins the cluster, runs one WorkerProgram (training, the
// KV benchmark, the smoke test...), then finishes in lockstep with the other
// workers: after the program returns, every worker waits at the workers'
// barrier and worker 0 asks the scheduler to shut the cluster down. A worker
// whose program fails asks for the shutdown at once (with the error as the
// reason) and exits 1, except when it failed with Aborted: the scheduler
// declared it dead and gave its data to the others, so it exits 1 and the
// cluster goes on without it.
//
// The CLI (tools/cli) parses flags and the environment into WorkerMainArgs
// and picks the program by name; this builds the real pieces (RealClock,
// MetricsRegistry, the /metrics /healthz /readyz HTTP server, ZmqTransport).
#ifndef TESSERA_WORKER_WORKER_MAIN_H_
#define TESSERA_WORKER_WORKER_MAIN_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "common/status.h"
#include "worker/worker_node.h"

namespace tessera::worker {

// What a worker process runs once it joined the cluster. `node` is started
// (node.kv() is usable); `args` are the program's own arguments. Runs on the
// main thread; long programs should return early once
// node.member().shutdown_requested() (SIGINT/SIGTERM or a cluster shutdown).
using WorkerProgram = std::function<Status(WorkerNode& node, const std::vector<std::string>& args)>;

struct WorkerMainArgs {
  // Bind endpoint, advertised host, scheduler endpoint, requested rank and
  // token. member.metrics_port is filled in with the bound metrics port.
  WorkerOptions node;
  // Interface and port of the HTTP observability server (0 picks a port).
  std::string metrics_host = "0.0.0.0";
  int metrics_port = 0;
  // CurveZMQ keys of the cluster (common/curve_keys.h), read by the CLI from
  // --curve-dir / TESSERA_CURVE_DIR. Unset: plaintext ZeroMQ.
  std::optional<CurveKeys> curve;
  // Registration and the first cluster view must arrive within this time.
  std::chrono::seconds startup_timeout{300};
  // The slowest worker's program must finish within this time after the
  // first one reached the final barrier.
  std::chrono::seconds barrier_timeout{3600};
  std::string program_name;
  WorkerProgram program;  // required
  std::vector<std::string> program_args;
  // A streaming job under mpirun (or Kubernetes): every rank gets the
  // signal, but the scheduler drains the stream and then stops the cluster;
  // so the first SIGINT/SIGTERM after registration is only logged, and a
  // second one stops this node.
  bool first_signal_drains = false;
};

// Returns 0 if the program succeeded and the cluster shut down in order,
// 1 on failure, 128+signo when interrupted before it joined.
// REQUIRES: BlockShutdownSignals() was called before any thread started.
int RunWorker(const WorkerMainArgs& args);

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_WORKER_MAIN_H_
