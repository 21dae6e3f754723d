// The scheduler's status document (GET /v1/status, `tessera status`) from
// real nodes in one process on a SimulatedClock: servers' rows and keys/s
// and a worker's figures arrive in heartbeats; silent nodes turn late, then
// dead.
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>
#include <vector>

#include "common/deadline.h"
#include "protocols/codec.h"
#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

using std::chrono::milliseconds;
using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);
constexpr TableId kEmb = 0;

InProcClusterOptions Options() {
  InProcClusterOptions o;
  o.num_servers = 2;
  o.num_workers = 1;
  TableConfig emb;
  emb.id = kEmb;
  emb.name = "emb";
  emb.dim = 2;
  emb.optimizer.type = OptimizerType::kSgd;
  o.tables = {emb};
  o.heartbeat_interval = milliseconds(100);
  o.heartbeat_timeout = milliseconds(1000);
  return o;
}

void PushKeys(worker::KvClient& kv, Key first, Key count) {
  std::vector<Key> keys(count);
  std::iota(keys.begin(), keys.end(), first);
  std::vector<float> grads(keys.size() * 2, 0.5f);
  StatusOr<worker::KvClient::Ticket> t = kv.Push(kEmb, keys, grads);
  ASSERT_OK(t.status());
  ASSERT_OK(kv.Wait(*t, DeadlineIn(kWait)));
}

TEST(StatusClusterTest, HeartbeatsCarryRowsRatesAndWorkerFigures) {
  SimulatedClock clock;
  InProcCluster c(Options(), &clock);
  ASSERT_OK(c.Start());
  // The worker here runs no trainer: give it figures as a trainer would.
  uint64_t examples = 1000;
  c.worker(0).member().SetStatsProvider([&examples] {
    protocol::NodeStats s;
    s.has_worker_stats = true;
    s.examples_total = examples;
    s.steps_total = examples / 100;
    s.staleness = 2;
    return s;
  });

  PushKeys(c.worker(0).kv(), 0, 300);
  c.SendHeartbeats();  // first reports: figures, no rates yet
  scheduler::ClusterStatus status = c.scheduler().GetClusterStatus();
  ASSERT_EQ(status.shards.size(), 2u);
  uint64_t rows = 0;
  for (const scheduler::ShardStatusRow& s : status.shards) {
    EXPECT_TRUE(s.reported);
    EXPECT_GT(s.rows, 0u);  // 300 keys spread over both servers' slots
    EXPECT_GT(s.bytes, s.rows * 16);
    EXPECT_EQ(s.keys_per_s, 0);
    rows += s.rows;
  }
  EXPECT_EQ(rows, 300u);
  EXPECT_EQ(status.shards[0].slots + status.shards[1].slots, status.num_slots);

  // 2 s later: 400 more keys pushed (100 of them new rows), 3000 more examples.
  clock.AdvanceTime(milliseconds(2000));
  PushKeys(c.worker(0).kv(), 200, 200);
  PushKeys(c.worker(0).kv(), 200, 200);
  examples += 3000;
  c.SendHeartbeats();
  status = c.scheduler().GetClusterStatus();
  EXPECT_TRUE(status.running);
  ASSERT_EQ(status.nodes.size(), 3u);  // servers and the worker (main adds the scheduler)
  for (const scheduler::NodeStatusRow& n : status.nodes) {
    EXPECT_EQ(n.health, scheduler::NodeHealth::kAlive) << n.info.id.ToString();
    ASSERT_TRUE(n.heartbeat_age_s.has_value());
    EXPECT_EQ(*n.heartbeat_age_s, 0);  // the clock did not move since
  }
  rows = 0;
  double keys_per_s = 0;
  for (const scheduler::ShardStatusRow& s : status.shards) {
    rows += s.rows;
    keys_per_s += s.keys_per_s;
  }
  EXPECT_EQ(rows, 400u);
  EXPECT_DOUBLE_EQ(keys_per_s, 400.0 / 2);
  ASSERT_EQ(status.workers.size(), 1u);
  EXPECT_TRUE(status.workers[0].reported);
  EXPECT_EQ(status.workers[0].examples, 4000u);
  EXPECT_EQ(status.workers[0].steps, 40u);
  EXPECT_EQ(status.workers[0].staleness, 2u);
  EXPECT_DOUBLE_EQ(status.workers[0].samples_per_s, 3000.0 / 2);
  c.worker(0).member().SetStatsProvider({});
}

TEST(StatusClusterTest, SilentNodesTurnLateThenDead) {
  SimulatedClock clock;
  InProcCluster c(Options(), &clock);
  ASSERT_OK(c.Start());
  c.SendHeartbeats();
  // Past two heartbeat intervals without a beat: late, not dead.
  clock.AdvanceTime(milliseconds(300));
  EXPECT_TRUE(c.scheduler().CheckLiveness().empty());
  scheduler::ClusterStatus status = c.scheduler().GetClusterStatus();
  for (const scheduler::NodeStatusRow& n : status.nodes) {
    EXPECT_EQ(n.health, scheduler::NodeHealth::kLate) << n.info.id.ToString();
    EXPECT_DOUBLE_EQ(*n.heartbeat_age_s, 0.3);
  }
  // A worker without a trainer reports no figures.
  ASSERT_EQ(status.workers.size(), 1u);
  EXPECT_FALSE(status.workers[0].reported);

  c.KillServer(1);
  clock.AdvanceTime(milliseconds(600));
  c.SendHeartbeats();
  clock.AdvanceTime(milliseconds(600));
  c.SendHeartbeats();
  ASSERT_EQ(c.scheduler().CheckLiveness().size(), 1u);
  status = c.scheduler().GetClusterStatus();
  for (const scheduler::NodeStatusRow& n : status.nodes) {
    const bool killed = n.info.id == NodeId{Role::kServer, 1};
    EXPECT_EQ(n.health, killed ? scheduler::NodeHealth::kDead : scheduler::NodeHealth::kAlive)
        << n.info.id.ToString();
  }
}

}  // namespace
}  // namespace tessera
