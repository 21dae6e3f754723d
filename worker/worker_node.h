// A worker: joins the cluster and gives its program (training, a KV
// benchmark, a test) a KvClient bound to the cluster view.
//
// Thread-safe after Start().
//
// Example:
//   WorkerNode worker({.member = {.scheduler_endpoint = ep}, .token = token},
//                     transport, &clock, &metrics);
//   TESSERA_RETURN_IF_ERROR(worker.Start(DeadlineIn(30s)));
//   worker.kv().Pull(...);
//   worker.member().RequestClusterShutdown("done", DeadlineIn(5s));
#ifndef TESSERA_WORKER_WORKER_NODE_H_
#define TESSERA_WORKER_WORKER_NODE_H_

#include <atomic>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/transport.h"
#include "protocols/cluster_member.h"
#include "protocols/messenger.h"
#include "worker/kv_client.h"

namespace tessera::worker {

struct WorkerOptions {
  protocol::MemberOptions member;  // role is forced to kWorker
  std::string token;
};

class WorkerNode {
 public:
  // `transport`, `clock` and `metrics` are borrowed and must outlive this.
  WorkerNode(WorkerOptions options, Transport* transport, const Clock* clock,
             MetricsRegistry* metrics);
  ~WorkerNode();  // Stop()s.

  // Binds, registers and waits for the cluster view (servers configured).
  Status Start(SteadyTime deadline);
  void Stop();

  // True once Start() succeeded.
  bool ready() const { return kv_ready_.load(); }
  NodeId id() const { return member_.id(); }
  int num_workers() const;
  // REQUIRES: ready().
  KvClient& kv() ABSL_NO_THREAD_SAFETY_ANALYSIS { return *kv_; }
  protocol::ClusterMember& member() { return member_; }
  const Clock* clock() const { return clock_; }
  MetricsRegistry* metrics() const { return metrics_; }

 private:
  void Handle(protocol::DecodedMessage msg);

  const WorkerOptions options_;
  const Clock* const clock_;
  MetricsRegistry* const metrics_;
  protocol::Messenger messenger_;
  protocol::ClusterMember member_;
  std::atomic<bool> kv_ready_{false};
  // Created by Start(); the receive thread hands it newer cluster views.
  Mutex kv_mu_;
  std::unique_ptr<KvClient> kv_ TESSERA_GUARDED_BY(kv_mu_);
};

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_WORKER_NODE_H_
