// The scheduler's status document, served as JSON on GET /v1/status of its
// HTTP server and printed by `tessera status`: every node with its health
// and heartbeat age, the shards with what each server reports (rows, bytes,
// keys/s), the workers (examples, steps, samples/s, staleness), the data
// progress and the newest published model version with its freshness.
//
// NodeReports keeps the last figures each node sent in its heartbeats and
// turns their counters into rates. Thread-compatible (the scheduler holds
// its lock).
//
// Example:
//   ClusterStatus status = node.GetClusterStatus();
//   std::string json = ClusterStatusJson(status);
#ifndef TESSERA_SCHEDULER_CLUSTER_STATUS_H_
#define TESSERA_SCHEDULER_CLUSTER_STATUS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"
#include "protocols/codec.h"

namespace tessera::scheduler {

// One node's last reported figures, with rates over its last two reports.
struct NodeReport {
  protocol::NodeStats stats;
  Clock::TimePoint at;
  double keys_per_s = 0;
  double samples_per_s = 0;
};

class NodeReports {
 public:
  // Records `stats` received at `at`. Rates are the counters' increase over
  // the time since the node's previous report (0 for its first; a counter
  // that went down, a restarted node, counts from zero).
  void Record(NodeId node, const protocol::NodeStats& stats, Clock::TimePoint at);
  // Forgets a node (a replacement process starts from nothing).
  void Erase(NodeId node);
  // nullptr if the node has reported nothing.
  const NodeReport* Find(NodeId node) const;

 private:
  std::map<NodeId, NodeReport> reports_;
};

enum class NodeHealth { kAlive, kLate, kDead };
std::string_view NodeHealthName(NodeHealth health);  // "alive", "late", "dead"

struct NodeStatusRow {
  protocol::NodeInfo info;
  NodeHealth health = NodeHealth::kAlive;
  // Seconds since its last heartbeat; nullopt for the scheduler itself.
  std::optional<double> heartbeat_age_s;
};

struct ShardStatusRow {
  int32_t server = 0;  // rank
  uint32_t slots = 0;  // slots it is primary for
  bool reported = false;  // false: no figures from it yet
  uint64_t rows = 0;
  uint64_t bytes = 0;
  double keys_per_s = 0;
};

struct WorkerStatusRow {
  int32_t worker = 0;  // rank
  bool reported = false;  // false: no figures (not training yet, or another program)
  uint64_t examples = 0;
  uint64_t steps = 0;
  double samples_per_s = 0;
  uint64_t staleness = 0;
};

struct ClusterStatus {
  int64_t now_unix_ms = 0;
  bool running = false;  // every node registered and the tables configured
  uint64_t epoch = 0;    // of the cluster view
  uint32_t replication = 1;
  uint32_t num_slots = 0;
  std::vector<NodeStatusRow> nodes;  // scheduler, servers, workers by rank
  std::vector<ShardStatusRow> shards;
  std::vector<WorkerStatusRow> workers;
  uint64_t chunks_completed = 0;
  uint64_t chunks_total = 0;
  // The newest published model version (0: none) and when it was cut.
  uint64_t model_version = 0;
  int64_t model_created_unix_ms = 0;
};

// The document (see docs/operations.md for its fields). Freshness is
// now_unix_ms - model_created_unix_ms, in seconds (null without a version).
std::string ClusterStatusJson(const ClusterStatus& status);

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_CLUSTER_STATUS_H_
