#include "scheduler/scheduler_main.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/deadline.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/shutdown_signals.h"
#include "common/zmq_transport.h"
#include "protocols/cluster_member.h"
#include "scheduler/cluster_status.h"
#include "scheduler/stream_input.h"

namespace tessera::scheduler {
namespace {

// Long enough to mean "until told otherwise"; waits loop on it.
constexpr std::chrono::hours kForever(24);

// The scheduler's own row of the status document, set once it is bound
// (the HTTP server starts first, so /v1/status may be asked before).
class SelfRow {
 public:
  void Set(const protocol::NodeInfo& info) {
    MutexLock lock(&mu_);
    info_ = info;
  }
  protocol::NodeInfo Get() const {
    MutexLock lock(&mu_);
    return info_;
  }

 private:
  mutable Mutex mu_;
  protocol::NodeInfo info_ TESSERA_GUARDED_BY(mu_){kSchedulerId, "", 0, ::getpid(), ""};
};

// GET /v1/status: scheduler/cluster_status.h.
HttpResponse StatusResponse(const SchedulerNode& node, const SelfRow& self) {
  ClusterStatus status = node.GetClusterStatus();
  status.nodes.insert(status.nodes.begin(),
                      NodeStatusRow{.info = self.Get(), .health = NodeHealth::kAlive,
                                    .heartbeat_age_s = std::nullopt});
  return HttpResponse{.status = 200,
                      .content_type = "application/json",
                      .body = ClusterStatusJson(status)};
}

// Waits until the cluster runs. OK also when a signal stopped it first.
Status WaitRunning(const SchedulerNode& node, const SchedulerMainArgs& args,
                   const std::atomic<int>& signals) {
  const bool bounded = args.startup_timeout.count() > 0;
  Status running;
  do {
    running = node.WaitRunning(DeadlineIn(bounded ? args.startup_timeout : kForever));
  } while (!bounded && absl::IsDeadlineExceeded(running));
  if (absl::IsCancelled(running) && signals.load() > 0) return OkStatus();
  if (absl::IsCancelled(running)) {
    return FailedPreconditionError("cluster shut down before it was running");
  }
  return running;
}

Status Run(const SchedulerMainArgs& args) {
  SetLogNodeLabel(kSchedulerId.ToString());
  RealClock clock;
  MetricsRegistry metrics;
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport,
                           NewNodeTransport(&metrics, args.curve));
  SchedulerOptions options = args.node;
  options.liveness_thread = true;
  SchedulerNode node(options, transport.get(), &clock, &metrics);

  HttpServer http;  // stops before `node` is destroyed: its routes read it
  AddObservabilityRoutes(&http, &metrics, [&node] { return node.running(); });
  SelfRow self_row;
  http.Handle("GET", "/v1/status",
              [&node, &self_row](const HttpRequest&) { return StatusResponse(node, self_row); });
  TESSERA_ASSIGN_OR_RETURN(int metrics_port, http.Start(args.metrics_host, args.metrics_port));
  TESSERA_ASSIGN_OR_RETURN(std::string bound, node.Start());
  const std::string endpoint = protocol::AdvertisedEndpoint(bound, args.advertise_host);
  TESSERA_LOG(kInfo) << "scheduler address " << endpoint << ", metrics on port " << metrics_port;

  StreamInput stream(options.stream_input, &node);
  const bool streaming = !options.stream_input.source.empty();
  std::atomic<int> signals{0};
  ShutdownSignalWatcher watcher([&](int signo, bool insist) {
    const int n = signals.fetch_add(1) + 1;
    if (insist) {
      TESSERA_LOG(kWarning) << ShutdownSignalName(signo) << " again: exiting now";
      _exit(128 + signo);
    }
    if (streaming && n == 1 && node.running()) {
      // Drain: no more input; workers finish what is queued, the last
      // version is published, and the job ends normally.
      TESSERA_LOG(kInfo) << ShutdownSignalName(signo)
                         << ": closing the input stream and draining (again to stop now)";
      stream.Stop();
      node.CloseStream();
      return;
    }
    node.ShutdownCluster(std::string("scheduler received ") + ShutdownSignalName(signo));
  });

  const protocol::NodeInfo self{kSchedulerId, endpoint, metrics_port, ::getpid(),
                                args.advertise_host};
  self_row.Set(self);
  Status result = stream.Start();
  if (result.ok() && args.on_bound) result = args.on_bound(self);
  if (result.ok()) result = WaitRunning(node, args, signals);
  if (result.ok() && node.running() && args.on_running) {
    result = args.on_running(self, *node.cluster_view());
  }
  if (!result.ok()) node.ShutdownCluster("scheduler: " + std::string(result.message()));
  while (absl::IsDeadlineExceeded(node.WaitForShutdown(DeadlineIn(kForever)))) {
  }
  // The shutdown broadcast is queued on ZeroMQ sockets that close with
  // linger 0; give it a moment to leave before they close. No node is waiting
  // on this, so a fixed grace is enough.
  std::this_thread::sleep_for(args.shutdown_drain);
  stream.Stop();
  http.Stop();
  node.Stop();
  if (!node.dead_nodes().empty()) {
    TESSERA_LOG(kWarning) << node.dead_nodes().size() << " node(s) were declared dead";
  }
  return result;
}

}  // namespace

int RunScheduler(const SchedulerMainArgs& args) { return LogExit("scheduler", Run(args)); }

}  // namespace tessera::scheduler
