// Server failover (cluster.replication >= 2): when a server is declared
// dead, its first backup (the next live server) is promoted in its place.
//
//   1. A new view (epoch + 1): the dead server listed in dead_servers, its
//      slots owned by the next live server (PromoteBackups).
//   2. Every live server applies it (promotes its replica copy, resyncs its
//      own backups) and acknowledges.
//   3. Then the workers get it; their KV clients resend what was in flight
//      to the dead server, with the same operation ids.
//
// With replication 1 a server's death loses its shards: the job stops with
// an error naming `tessera train --resume`.
#include <algorithm>
#include <chrono>

#include "common/logging.h"
#include "scheduler/scheduler_node.h"

namespace tessera::scheduler {

using protocol::DecodedMessage;
using protocol::Header;

int SchedulerNode::LiveServers() const {
  return options_.num_servers -
         static_cast<int>(std::count_if(dead_.begin(), dead_.end(),
                                        [](NodeId n) { return n.role == Role::kServer; }));
}

void SchedulerNode::OnServerDead(NodeId server) {
  if (!view_.has_value() || shutdown_) return;
  if (options_.replication < 2) {
    BroadcastShutdown(server.ToString() +
                      " died and cluster.replication is 1: its shards are lost. Resume the job "
                      "from its last published version with `tessera train --resume`");
    return;
  }
  std::vector<bool> live = view_->LiveServers();
  if (server.rank < 0 || static_cast<size_t>(server.rank) >= live.size() || !live[server.rank]) {
    return;
  }
  live[server.rank] = false;
  if (std::none_of(live.begin(), live.end(), [](bool b) { return b; })) {
    BroadcastShutdown("every server is dead");
    return;
  }
  protocol::ClusterView next = *view_;
  next.epoch = view_->epoch + 1;
  next.dead_servers.push_back(server.rank);
  std::sort(next.dead_servers.begin(), next.dead_servers.end());
  next.shard_map = PromoteBackups(view_->shard_map, live);
  view_ = next;
  failover_epoch_ = next.epoch;
  failover_pending_ = LiveServers();
  failover_silence_ = detector_.SinceLastBeat(server);
  failover_declared_ = clock_->Now();
  TESSERA_LOG(kWarning) << "failover: " << server.ToString() << " is dead; view " << next.epoch
                        << " promotes its backup";
  // The all-nodes barrier waits for the live servers only.
  all_barrier_.RemoveIf([server](const DecodedMessage& m) { return m.header().sender == server; });
  const int dead_workers = static_cast<int>(
      std::count_if(dead_.begin(), dead_.end(), [](NodeId n) { return n.role == Role::kWorker; }));
  for (const DecodedMessage& waiter :
       all_barrier_.Release(options_.num_workers - dead_workers + LiveServers())) {
    (void)messenger_.Reply(waiter, [](const Header& h) { return protocol::EncodeAck(h); });
  }
  for (const protocol::NodeInfo& node : next.servers) {
    if (!live[node.id.rank]) continue;
    const NodeId id = node.id;
    const uint64_t epoch = next.epoch;
    StatusOr<uint64_t> sent = messenger_.SendRequest(
        id, [&](const Header& h) { return protocol::EncodeClusterView(h, next); },
        [this, epoch, id](StatusOr<DecodedMessage> reply) {
          OnFailoverViewApplied(epoch, id, reply.ok() ? reply->header().status : reply.status());
        });
    if (!sent.ok()) {
      TESSERA_LOG(kError) << "failover: cannot send view " << epoch << " to " << id.ToString()
                          << ": " << sent.status();
    }
  }
}

void SchedulerNode::OnFailoverViewApplied(uint64_t epoch, NodeId server, Status status) {
  MutexLock lock(&mu_);
  if (epoch != failover_epoch_ || failover_pending_ <= 0 || shutdown_) return;
  if (!status.ok()) {
    // Rows the promoted server could not take over are lost: stop rather
    // than train on with holes.
    TESSERA_LOG(kError) << server.ToString() << " could not apply view " << epoch << ": " << status;
    BroadcastShutdown("failover failed on " + server.ToString() + ": " +
                      std::string(status.message()));
    return;
  }
  if (--failover_pending_ > 0) return;
  const protocol::ClusterView& view = *view_;
  for (const protocol::NodeInfo& w : view.workers) {
    (void)messenger_.SendOneWay(w.id, [&](const Header& h) {
      return protocol::EncodeClusterView(h, view);
    });
  }
  const double seconds =
      std::chrono::duration<double>(failover_silence_ + (clock_->Now() - failover_declared_))
          .count();
  metrics_
      ->GetHistogram("tessera_scheduler_recovery_seconds",
                     "From a dead server's last heartbeat to the view promoting its backup "
                     "reaching the workers (training resumes).",
                     {0.1, 0.25, 0.5, 1, 2, 5, 10, 30})
      .Observe(seconds);
  metrics_
      ->GetGauge("tessera_scheduler_last_recovery_seconds",
                 "tessera_scheduler_recovery_seconds of the last failover.")
      .Set(seconds);
  TESSERA_LOG(kWarning) << "failover: view " << epoch << " applied by every live server; "
                        << "recovery took " << seconds << " s since the last heartbeat";
}

}  // namespace tessera::scheduler
