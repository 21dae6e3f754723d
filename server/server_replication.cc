// ServerNode's part in failover: cluster views that move slots (promotion
// of a backup), the replication stream to this server's backups and the
// copies it keeps for other primaries. See server/replicator.h and
// server/replica_store.h.
#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "common/logging.h"
#include "server/server_node.h"

namespace tessera::server {

using protocol::DecodedMessage;
using protocol::Header;

std::vector<NodeId> ServerNode::CurrentBackups() const {
  std::vector<NodeId> out;
  if (rank_ < 0 || live_servers_.empty()) return out;
  for (int32_t r : BackupsOf(rank_, live_servers_, replication_)) out.push_back({Role::kServer, r});
  // A replacement server taking this server's slots gets a full copy first.
  const NodeId joining{Role::kServer, handoff_to_};
  if (handoff_from_ == rank_ && std::find(out.begin(), out.end(), joining) == out.end()) {
    out.push_back(joining);
  }
  return out;
}

void ServerNode::ReplyWhenReplicated(Replicator::Reply send) {
  replicator_.AfterReplicated(std::move(send));
}

void ServerNode::HandleReplicaSync(const DecodedMessage& msg) {
  replicator_.AfterReplicated([this, request = msg](const Status& status) {
    (void)messenger_.Reply(request, [](const Header& h) { return protocol::EncodeAck(h); }, status);
  });
}

void ServerNode::HandleClusterView(const DecodedMessage& msg) {
  StatusOr<protocol::ClusterView> view = msg.AsClusterView();
  if (!view.ok()) {
    TESSERA_LOG(kError) << "bad cluster view: " << view.status();
    bad_requests_.Increment();
    (void)messenger_.ReplyError(msg, view.status());
    return;
  }
  Status s;
  if (view_epoch_ != 0 && view->epoch <= view_epoch_) {
    TESSERA_LOG(kDebug) << "ignored cluster view " << view->epoch << " (have " << view_epoch_ << ")";
  } else {
    const ShardMap old_map = shard_map_;
    shard_map_ = view->shard_map;
    live_servers_ = view->LiveServers();
    replication_ = view->replication;
    handoff_from_ = view->handoff_from;
    handoff_to_ = view->handoff_to;
    view_epoch_ = view->epoch;
    replicator_.set_request_timeout(std::chrono::milliseconds(view->request_timeout_ms));
    member_.OnClusterView(std::move(view).value());
    rank_ = member_.id().rank;
    // Before the tables are configured there is nothing to move: the first
    // view only sets the map.
    if (ready_) s = ApplyViewChange(old_map);
    if (!s.ok()) TESSERA_LOG(kError) << "cluster view " << view_epoch_ << ": " << s;
  }
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
}

Status ServerNode::ApplyViewChange(const ShardMap& old_map) {
  const auto start = std::chrono::steady_clock::now();
  // Slots this server owns now and did not before, by their old owner, and
  // slots it lost (to a replacement server).
  std::set<int32_t> taken_from;
  bool lost = false;
  for (SlotId slot = 0; slot < shard_map_.num_slots(); ++slot) {
    const bool owns = shard_map_.OwnerOfSlot(slot) == rank_;
    const bool owned = old_map.OwnerOfSlot(slot) == rank_;
    if (owns && !owned) taken_from.insert(old_map.OwnerOfSlot(slot));
    if (owned && !owns) lost = true;
  }
  Status status;
  if (lost) {
    // Pushes applied here and not yet on the backups may be for slots that
    // moved: their clients resend them to the new owner (same operation
    // ids, so the new owner applies each exactly once).
    replicator_.FailWaiting(
        UnavailableError("server: slots moved to another server; resend under the new view"));
    const ShardMap& map = shard_map_;
    const int32_t self = rank_;
    size_t erased = 0;
    for (const ServerTable* t : tables_.All()) {
      if (t->sparse) erased += t->sparse->EraseIf([&](Key k) { return map.OwnerOfKey(k) != self; });
    }
    TESSERA_RETURN_IF_ERROR(tables_.ReshardDense(shard_map_, rank_));
    TESSERA_LOG(kInfo) << "handed slots over: " << erased << " rows left this server";
  }
  if (!taken_from.empty()) {
    TESSERA_RETURN_IF_ERROR(tables_.ReshardDense(shard_map_, rank_));
    const ShardMap& map = shard_map_;
    const int32_t self = rank_;
    auto owned = [&map, self](Key key) { return map.OwnerOfKey(key) == self; };
    for (int32_t primary : taken_from) {
      if (!replicas_.Has(primary)) {
        status = DataLossError("server: promoted in place of server " + std::to_string(primary) +
                               " without a copy of its shards");
        TESSERA_LOG(kError) << status;
        continue;
      }
      StatusOr<size_t> moved = replicas_.PromoteInto(primary, owned, tables_, applied_ops_);
      if (!moved.ok()) {
        status = moved.status();
        continue;
      }
      promoted_rows_.Increment(static_cast<double>(*moved));
      TESSERA_LOG(kInfo) << "promoted: took over server " << primary << "'s slots with " << *moved
                         << " rows";
    }
    for (const ServerTable* t : tables_.All()) UpdateTableGauges(*t);
  }
  // Copies this server no longer backs: dead primaries, or ones whose
  // backups changed.
  for (int32_t primary : replicas_.Primaries()) {
    const std::vector<int32_t> backups = BackupsOf(primary, live_servers_, replication_);
    const bool backing = primary < static_cast<int32_t>(live_servers_.size()) &&
                         live_servers_[primary] &&
                         (std::find(backups.begin(), backups.end(), rank_) != backups.end() ||
                          (handoff_from_ == primary && handoff_to_ == rank_));
    if (!backing) replicas_.Drop(primary);
  }
  replica_rows_.Set(static_cast<double>(replicas_.num_rows()));
  replicator_.SetBackups(CurrentBackups(), view_epoch_,
                         taken_from.empty() && !lost ? Replicator::Resync::kIfChanged
                                                     : Replicator::Resync::kAlways);
  TESSERA_LOG(kInfo) << "cluster view " << view_epoch_ << " applied in "
                     << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                     << " s; backups:" << [&] {
                          std::string list;
                          for (const NodeId& b : replicator_.backups()) {
                            list.append(" ");
                            list.append(b.ToString());
                          }
                          return list.empty() ? std::string(" none") : list;
                        }();
  return status;
}

void ServerNode::HandleReplicate(const DecodedMessage& msg) {
  StatusOr<protocol::ReplicateView> batch = msg.AsReplicate();
  Status s = batch.status();
  const NodeId from = msg.header().sender;
  if (s.ok() && !ready_) s = FailedPreconditionError("server: replication before table configuration");
  if (s.ok() && (from.role != Role::kServer || from.rank < 0 ||
                 from.rank >= static_cast<int32_t>(live_servers_.size()) || from.rank == rank_)) {
    s = InvalidArgumentError("server: replication from " + from.ToString());
  }
  if (s.ok() && batch->epoch < view_epoch_) {
    // Fencing: a primary deposed by a newer view must not have its pushes
    // acknowledged (they would be lost).
    s = FailedPreconditionError("server: replication batch of view " +
                                std::to_string(batch->epoch) + " from " + from.ToString() +
                                ", this server is at view " + std::to_string(view_epoch_));
  }
  if (s.ok()) {
    const uint64_t stale_before = replicas_.stale_messages();
    s = replicas_.Apply(from.rank, *batch, tables_);
    stale_replication_.Increment(static_cast<double>(replicas_.stale_messages() - stale_before));
  }
  if (!s.ok()) {
    bad_requests_.Increment();
    TESSERA_LOG(kWarning) << "refused replication from " << from.ToString() << ": " << s;
  }
  replica_rows_.Set(static_cast<double>(replicas_.num_rows()));
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
}

}  // namespace tessera::server
