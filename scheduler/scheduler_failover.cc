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

uint64_t SchedulerNode::SyncedEpoch(NodeId server) const {
  const NodeReport* report = reports_.Find(server);
  return report == nullptr ? 0 : report->stats.replica_sync_epoch;
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
  if (const uint64_t synced = SyncedEpoch(server); synced < resync_epoch_) {
    // Its backups were still receiving the full copy that view
    // resync_epoch_ started: promoting one could lose acknowledged updates.
    BroadcastShutdown(server.ToString() + " died before its backups had a complete copy of its " +
                      "shards (re-replication after view " + std::to_string(resync_epoch_) +
                      " had not finished; its last report: synced as of view " +
                      std::to_string(synced) + "): a second failure within the window " +
                      "cluster.replication 2 covers. Resume the job from its last published " +
                      "version with `tessera train --resume`");
    return;
  }
  protocol::ClusterView next = *view_;
  next.epoch = view_->epoch + 1;
  next.dead_servers.push_back(server.rank);
  std::sort(next.dead_servers.begin(), next.dead_servers.end());
  next.shard_map = PromoteBackups(view_->shard_map, live);
  view_ = next;
  resync_epoch_ = next.epoch;
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

// ---- replacement servers ----------------------------------------------------
//
//   1. A server registers while the job runs: it takes a dead rank (the one
//      it asked for, else the lowest), and view + 1 makes it live, owning
//      nothing, as an extra backup of `from`, the server holding the rank's
//      original slots. It is configured first, then the others get the view
//      (so `from` never replicates to a peer that cannot answer yet).
//   2. `from` is asked to sync (ReplicaSyncRequest): it answers once its
//      full copy to the newcomer, and everything after, is acknowledged.
//   3. View + 2 moves the rank's original slots from `from` to it; the
//      workers get it once every server applied it.

namespace tessera::scheduler {

StatusOr<NodeId> SchedulerNode::AcceptReplacement(const protocol::RegisterRequest& request) {
  if (options_.replication < 2) {
    return FailedPreconditionError(
        "scheduler: a server can join a running job only with cluster.replication >= 2");
  }
  if (handoff_.stage != 0 || failover_pending_ > 0) {
    return UnavailableError("scheduler: a failover or handoff is in progress; retry");
  }
  std::vector<int32_t> dead;
  for (NodeId n : dead_) {
    if (n.role == Role::kServer) dead.push_back(n.rank);
  }
  std::sort(dead.begin(), dead.end());
  if (dead.empty()) {
    return FailedPreconditionError("scheduler: the job is running and no server is dead");
  }
  int32_t rank = dead.front();
  if (request.requested_rank != kUnassignedRank) {
    if (std::find(dead.begin(), dead.end(), request.requested_rank) == dead.end()) {
      return FailedPreconditionError("scheduler: server rank " +
                                     std::to_string(request.requested_rank) +
                                     " is not dead; dead ranks can be replaced");
    }
    rank = request.requested_rank;
  }
  std::erase(dead_, NodeId{Role::kServer, rank});
  reports_.Erase(NodeId{Role::kServer, rank});  // the new process counts from zero
  return membership_.ReplaceServer(rank, request);
}

void SchedulerNode::StartHandoff(int32_t rank) {
  const ShardMap uniform = ShardMap::Uniform(options_.num_slots, options_.num_servers);
  int32_t from = -1;
  for (SlotId s = 0; s < uniform.num_slots() && from < 0; ++s) {
    if (uniform.OwnerOfSlot(s) == rank) from = view_->shard_map.OwnerOfSlot(s);
  }
  protocol::ClusterView next = *view_;
  next.epoch = view_->epoch + 1;
  std::erase(next.dead_servers, rank);
  next.servers = membership_.nodes(Role::kServer);
  next.handoff_from = from;
  next.handoff_to = rank;
  view_ = next;
  resync_epoch_ = next.epoch;
  handoff_ = Handoff{1, rank, from, next.epoch, 1};
  TESSERA_LOG(kWarning) << "handoff: server/" << rank << " replaces a dead server; it takes "
                        << "its slots over from server/" << from;
  const NodeId to{Role::kServer, rank};
  const uint64_t epoch = next.epoch;
  (void)messenger_.SendRequest(
      to, [&](const Header& h) { return protocol::EncodeClusterView(h, next); },
      [](StatusOr<DecodedMessage>) {});  // its ConfigureTables ack follows
  StatusOr<uint64_t> sent = messenger_.SendRequest(
      to, [&](const Header& h) { return protocol::EncodeConfigureTables(h, next.tables); },
      [this, epoch, to](StatusOr<DecodedMessage> reply) {
        AdvanceHandoff(epoch, to, reply.ok() ? reply->header().status : reply.status());
      });
  if (!sent.ok()) {
    TESSERA_LOG(kError) << "handoff: cannot configure server/" << rank << ": " << sent.status();
    handoff_ = Handoff{};
  }
}

int SchedulerNode::SendHandoffView(int32_t skip) {
  const protocol::ClusterView& view = *view_;
  const std::vector<bool> live = view.LiveServers();
  int sent = 0;
  for (const protocol::NodeInfo& node : view.servers) {
    if (!live[node.id.rank] || node.id.rank == skip) continue;
    const NodeId id = node.id;
    const uint64_t epoch = view.epoch;
    StatusOr<uint64_t> s = messenger_.SendRequest(
        id, [&](const Header& h) { return protocol::EncodeClusterView(h, view); },
        [this, epoch, id](StatusOr<DecodedMessage> reply) {
          AdvanceHandoff(epoch, id, reply.ok() ? reply->header().status : reply.status());
        });
    if (s.ok()) ++sent;
  }
  return sent;
}

void SchedulerNode::AdvanceHandoff(uint64_t epoch, NodeId from, Status status) {
  MutexLock lock(&mu_);
  if (handoff_.stage == 0 || epoch != handoff_.epoch || shutdown_) return;
  if (!status.ok()) {
    TESSERA_LOG(kError) << "handoff to server/" << handoff_.to << " failed at stage "
                        << handoff_.stage << " (" << from.ToString() << "): " << status
                        << "; it stays a backup without slots";
    handoff_ = Handoff{};
    return;
  }
  if (--handoff_.pending > 0) return;
  switch (handoff_.stage) {
    case 1:  // the newcomer is configured: the others get the view
      handoff_.stage = 2;
      handoff_.pending = SendHandoffView(handoff_.to);
      if (handoff_.pending > 0) return;
      [[fallthrough]];
    case 2: {  // everyone has the view: `from` syncs its copy to the newcomer
      handoff_.stage = 3;
      handoff_.pending = 1;
      const NodeId holder{Role::kServer, handoff_.from};
      const uint64_t e = handoff_.epoch;
      StatusOr<uint64_t> sent = messenger_.SendRequest(
          holder, [](const Header& h) { return protocol::EncodeReplicaSyncRequest(h); },
          [this, e, holder](StatusOr<DecodedMessage> reply) {
            AdvanceHandoff(e, holder, reply.ok() ? reply->header().status : reply.status());
          });
      if (!sent.ok()) {
        TESSERA_LOG(kError) << "handoff: cannot reach " << holder.ToString() << ": "
                            << sent.status();
        handoff_ = Handoff{};
      }
      return;
    }
    case 3: {  // the newcomer holds a full copy: move the slots
      const ShardMap uniform = ShardMap::Uniform(options_.num_slots, options_.num_servers);
      std::vector<int32_t> owners = view_->shard_map.slot_owner();
      int moved = 0;
      for (SlotId s = 0; s < uniform.num_slots(); ++s) {
        if (uniform.OwnerOfSlot(s) == handoff_.to && owners[s] == handoff_.from) {
          owners[s] = handoff_.to;
          ++moved;
        }
      }
      protocol::ClusterView next = *view_;
      next.epoch = view_->epoch + 1;
      next.shard_map = ShardMap(std::move(owners), view_->shard_map.num_servers());
      next.handoff_from = -1;
      next.handoff_to = -1;
      view_ = next;
      resync_epoch_ = next.epoch;
      full_version_due_ = true;  // the replacement's rows are not in its change sets
      handoff_.stage = 4;
      handoff_.epoch = next.epoch;
      handoff_.pending = SendHandoffView(-1);
      TESSERA_LOG(kWarning) << "handoff: view " << next.epoch << " moves " << moved
                            << " slots from server/" << handoff_.from << " to server/"
                            << handoff_.to;
      return;
    }
    case 4: {  // every server applied it: the workers follow
      const protocol::ClusterView& view = *view_;
      for (const protocol::NodeInfo& w : view.workers) {
        (void)messenger_.SendOneWay(w.id, [&](const Header& h) {
          return protocol::EncodeClusterView(h, view);
        });
      }
      TESSERA_LOG(kWarning) << "handoff: server/" << handoff_.to << " serves its slots again";
      alive_nodes_.Set(static_cast<double>(membership_.all().size() - dead_.size()));
      handoff_ = Handoff{};
      return;
    }
    default:
      return;
  }
}

}  // namespace tessera::scheduler
