// Entry function of the scheduler process. The CLI (tools/cli) parses flags
// and the environment into SchedulerMainArgs; this builds the real pieces
// (RealClock, MetricsRegistry, the /metrics /healthz /readyz HTTP server,
// ZmqTransport), runs a SchedulerNode until the cluster is shut down (a node
// asked for it, or SIGINT/SIGTERM) and returns the process exit code.
#ifndef TESSERA_SCHEDULER_SCHEDULER_MAIN_H_
#define TESSERA_SCHEDULER_SCHEDULER_MAIN_H_

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/curve_keys.h"
#include "common/status.h"
#include "protocols/codec.h"
#include "scheduler/scheduler_node.h"

namespace tessera::scheduler {

struct SchedulerMainArgs {
  // Bind endpoint, cluster size, tables, token and heartbeat settings.
  // liveness_thread is forced on.
  SchedulerOptions node;
  // Host put into the advertised address in place of 0.0.0.0.
  std::string advertise_host = "127.0.0.1";
  // Interface and port of the HTTP observability server (0 picks a port).
  std::string metrics_host = "0.0.0.0";
  int metrics_port = 0;
  // CurveZMQ keys of the cluster (common/curve_keys.h), read by the CLI from
  // --curve-dir / TESSERA_CURVE_DIR. Unset: plaintext ZeroMQ.
  std::optional<CurveKeys> curve;
  // The cluster must be running (every node registered, tables acknowledged)
  // within this time, or the scheduler shuts it down and fails.
  // Zero waits forever.
  std::chrono::seconds startup_timeout{300};
  // After ordering shutdown, time left for the broadcast to leave the
  // sockets before they close (they close with linger 0).
  std::chrono::milliseconds shutdown_drain{300};
  // Called on the main thread once the scheduler is bound, with its
  // advertised endpoint, metrics port and pid (launchers write it to a file
  // or broadcast it over MPI). An error aborts the start. May be empty.
  std::function<Status(const protocol::NodeInfo&)> on_bound;
  // Called on the main thread once the cluster runs, with this scheduler's
  // info and the cluster view (every server and worker). An error shuts the
  // cluster down. May be empty.
  std::function<Status(const protocol::NodeInfo& self, const protocol::ClusterView& view)>
      on_running;
};

// Returns 0 after an orderly shutdown, 1 on failure.
// REQUIRES: BlockShutdownSignals() was called before any thread started.
int RunScheduler(const SchedulerMainArgs& args);

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_SCHEDULER_MAIN_H_
