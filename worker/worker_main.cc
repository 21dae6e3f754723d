#include "worker/worker_main.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/deadline.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/shutdown_signals.h"
#include "common/zmq_transport.h"

namespace tessera::worker {
namespace {

constexpr std::chrono::seconds kShutdownRequestTimeout(30);
// How long a finished worker waits for the scheduler's shutdown order before
// exiting anyway (the scheduler may already be gone).
constexpr std::chrono::seconds kShutdownOrderTimeout(60);

// After the program: the final barrier and the shutdown request (see the
// header). Returns the worker's result.
Status Finish(WorkerNode& node, const WorkerMainArgs& args, Status program) {
  protocol::ClusterMember& member = node.member();
  Status result = program;
  if (absl::IsAborted(program)) {
    // The scheduler declared this worker dead (it was too slow to send
    // heartbeats) and gave its data to the others: the cluster goes on
    // without it.
    TESSERA_LOG(kError) << "program " << args.program_name << " stopped: " << program;
    return program;
  }
  if (!program.ok()) {
    TESSERA_LOG(kError) << "program " << args.program_name << " failed: " << program;
    if (!member.shutdown_requested()) {
      (void)member.RequestClusterShutdown(node.id().ToString() + " failed: " + program.ToString(),
                                          DeadlineIn(kShutdownRequestTimeout));
    }
  } else if (!member.shutdown_requested()) {
    TESSERA_LOG(kInfo) << "program " << args.program_name
                       << " finished; waiting for the other workers";
    result = member.Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(args.barrier_timeout));
    if (result.ok() && node.id().rank == 0) {
      result = member.RequestClusterShutdown(
          "all " + std::to_string(node.num_workers()) + " workers finished " + args.program_name,
          DeadlineIn(kShutdownRequestTimeout));
    } else if (!result.ok() && member.shutdown_requested()) {
      result = OkStatus();  // the cluster stopped while we waited: not our failure
    }
  }
  if (absl::IsDeadlineExceeded(member.WaitForShutdown(DeadlineIn(kShutdownOrderTimeout)))) {
    TESSERA_LOG(kWarning) << "no shutdown order from the scheduler; exiting anyway";
  }
  return result;
}

Status Run(const WorkerMainArgs& args) {
  SetLogNodeLabel("worker");
  if (!args.program) return InvalidArgumentError("worker: no program to run");
  RealClock clock;
  MetricsRegistry metrics;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport,
                           NewNodeTransport(&metrics, args.curve));

  // The node needs the metrics port (it registers it), so the HTTP server
  // starts first. Declared after `node`, so it stops before the node dies.
  std::unique_ptr<WorkerNode> node;
  std::atomic<bool> ready{false};
  HttpServer http;
  AddObservabilityRoutes(&http, &metrics, [&ready] { return ready.load(); });
  TESSERA_ASSIGN_OR_RETURN(int metrics_port, http.Start(args.metrics_host, args.metrics_port));

  WorkerOptions options = args.node;
  options.member.metrics_port = metrics_port;
  node = std::make_unique<WorkerNode>(options, transport.get(), &clock, &metrics);

  std::atomic<bool> started{false};
  ShutdownSignalWatcher watcher(
      protocol::MemberSignalHandler("worker", &started, args.first_signal_drains, &node->member()));

  TESSERA_RETURN_IF_ERROR(node->Start(DeadlineIn(args.startup_timeout)));
  started.store(true);
  ready.store(true);
  TESSERA_LOG(kInfo) << node->id().ToString() << " at " << node->member().endpoint()
                     << ", metrics on port " << metrics_port << "; running program "
                     << args.program_name;
  Status result = Finish(*node, args, args.program(*node, args.program_args));
  http.Stop();
  node->Stop();
  return result;
}

}  // namespace

int RunWorker(const WorkerMainArgs& args) { return LogExit("worker", Run(args)); }

}  // namespace tessera::worker
