// A parameter server: holds its shards of every table and answers pull,
// push and push-and-pull requests. A push is acknowledged only after the
// update has been applied.
//
// Threading: requests are handled on the Messenger's receive thread (tables
// are thread-safe, so more handler threads can be added without changing
// them). Public methods are thread-safe.
//
// Example:
//   ServerNode server({.member = {.role = Role::kServer, .scheduler_endpoint = ep},
//                      .token = token}, transport, &clock, &metrics);
//   TESSERA_RETURN_IF_ERROR(server.Start(DeadlineIn(30s)));
//   server.WaitForShutdown(...);
#ifndef TESSERA_SERVER_SERVER_NODE_H_
#define TESSERA_SERVER_SERVER_NODE_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/transport.h"
#include "protocols/cluster_member.h"
#include "protocols/messenger.h"
#include "server/applied_ops.h"
#include "server/replica_store.h"
#include "server/replicator.h"
#include "server/table_set.h"
#include "server/version_snapshot.h"

namespace tessera::server {

struct ServerOptions {
  protocol::MemberOptions member;  // role is forced to kServer
  std::string token;
};

class ServerNode {
 public:
  // `transport`, `clock` and `metrics` are borrowed and must outlive this.
  ServerNode(ServerOptions options, Transport* transport, const Clock* clock,
             MetricsRegistry* metrics);
  ~ServerNode();  // Stop()s.

  // Binds, starts the receive thread and registers with the scheduler.
  Status Start(SteadyTime deadline);
  void Stop();

  // True once the tables are configured (the server answers requests).
  bool ready() const { return ready_.load(); }
  Status WaitForShutdown(SteadyTime deadline) const { return member_.WaitForShutdown(deadline); }
  NodeId id() const { return member_.id(); }
  const std::string& endpoint() const { return member_.endpoint(); }
  protocol::ClusterMember& member() { return member_; }
  const TableSet& tables() const { return tables_; }
  // Removes the rows of `keys` from table `table` (`tessera forget`), its
  // own and its backup copies; returns how many it held. With change
  // tracking on, each becomes a tombstone of the next delta. Unknown or
  // dense tables: 0.
  // server/server_forget.cc.
  size_t EraseKeys(TableId table, std::span<const Key> keys);

 private:
  struct OpMetrics {
    Counter* requests;
    Counter* keys;
    Histogram* latency;
  };

  void Handle(protocol::DecodedMessage msg);
  void HandleConfigure(const protocol::DecodedMessage& msg);
  // server_replication.cc: cluster views (failover) and replication.
  void HandleClusterView(const protocol::DecodedMessage& msg);
  Status ApplyViewChange(const ShardMap& old_map);
  void HandleReplicate(const protocol::DecodedMessage& msg);
  // The backups of this server under the current view.
  std::vector<NodeId> CurrentBackups() const;
  // Sends the reply made by `send` once the request's changes are on every
  // backup (at once without replication).
  void ReplyWhenReplicated(Replicator::Reply send);
  void HandleReplicaSync(const protocol::DecodedMessage& msg);
  void HandleSnapshot(const protocol::DecodedMessage& msg);
  void HandleSnapshotFlush(protocol::DecodedMessage msg);
  void HandleRestore(const protocol::DecodedMessage& msg);
  void HandleForget(const protocol::DecodedMessage& msg);  // server_forget.cc
  Status HandleSparse(const protocol::DecodedMessage& msg);
  Status HandleDense(const protocol::DecodedMessage& msg);
  StatusOr<const ServerTable*> FindTable(TableId id, TableKind kind) const;
  Status CheckOwnership(std::span<const Key> keys) const;
  // InvalidArgument outside the table; FailedPrecondition (stale shard map)
  // unless [begin, begin + count) lies in one range this server owns.
  Status CheckDenseOwned(const ServerTable& table, uint64_t begin, uint64_t count) const;
  void UpdateTableGauges(const ServerTable& table);
  // Rows, bytes and keys served, for heartbeats (`tessera status`). Runs on
  // the heartbeat thread.
  protocol::NodeStats CurrentStats() const;
  OpMetrics MakeOpMetrics(const std::string& op);

  const ServerOptions options_;
  const Clock* const clock_;
  MetricsRegistry* const metrics_;
  protocol::Messenger messenger_;
  protocol::ClusterMember member_;
  TableSet tables_;
  std::atomic<bool> ready_{false};
  // Set from the cluster view, before tables are configured; used only on
  // the receive thread.
  ShardMap shard_map_;
  int32_t rank_ = kUnassignedRank;
  uint64_t view_epoch_ = 0;
  uint32_t replication_ = 1;
  std::vector<bool> live_servers_;
  int32_t handoff_from_ = -1;  // the view's handoff (a replacement server)
  int32_t handoff_to_ = -1;
  // Operation ids applied here (deduplication of retried pushes), the
  // copies of other servers' shards and the primary's replication stream;
  // used only on the receive thread.
  AppliedOps applied_ops_;
  ReplicaStore replicas_;
  Replicator replicator_;

  OpMetrics pull_, push_, push_pull_, dense_pull_, dense_push_;
  struct TableGauges {
    Gauge* rows;
    Gauge* bytes;
    Gauge* sketch_bytes;
    Counter* admitted;
    Counter* rejected;
    Counter* evicted_ttl;
    Counter* evicted_max_rows;
    Counter* pulled;
    Counter* pull_misses;
    EmbeddingTable::Stats seen;  // The table's totals already counted.
  };
  // Per-table gauges; used only on the receive thread.
  std::map<TableId, TableGauges> table_gauges_;
  SnapshotWriter snapshot_writer_;
  Histogram& capture_seconds_;
  Counter& captured_rows_;
  Counter& bytes_received_;
  Counter& bytes_sent_;
  Counter& bad_requests_;
  Counter& duplicate_ops_;
  Counter& promoted_rows_;
  Gauge& replica_rows_;
  Counter& stale_replication_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_SERVER_NODE_H_
