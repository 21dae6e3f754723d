// Server failover with cluster.replication 2: a primary dies mid-training,
// its backup is promoted, in-flight pushes are retried, and no acknowledged
// update is lost or applied twice (SGD sums checked against the single-node
// reference, exactly: every gradient is a multiple of 1/4).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

using testing::ClusterTransport;
using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);
constexpr TableId kEmb = 0;
constexpr TableId kDense = 1;
constexpr uint32_t kDim = 4;
constexpr uint64_t kDenseSize = 777;
constexpr int kKeys = 3000;

std::vector<TableConfig> SgdTables() {
  TableConfig emb;
  emb.id = kEmb;
  emb.name = "emb";
  emb.dim = kDim;
  emb.optimizer.type = OptimizerType::kSgd;
  emb.optimizer.learning_rate = 1.0f;
  emb.initializer = {InitializerType::kZeros, 0.0f, 1};
  TableConfig dense = emb;
  dense.id = kDense;
  dense.name = "mlp";
  dense.kind = TableKind::kDense;
  dense.dim = 0;
  dense.size = kDenseSize;
  return {emb, dense};
}

std::vector<Key> Keys() {
  std::vector<Key> keys(kKeys);
  std::iota(keys.begin(), keys.end(), Key{1});
  return keys;
}

double Metric(MetricsRegistry& m, const std::string& name) {
  return m.GetCounter(name, "").Value();
}

class FailoverTest : public ::testing::TestWithParam<ClusterTransport> {
 protected:
  InProcClusterOptions Options() {
    InProcClusterOptions o;
    o.num_servers = 3;
    o.num_workers = 2;
    o.replication = 2;
    o.tables = SgdTables();
    o.transport = GetParam();
    o.heartbeat_timeout = std::chrono::milliseconds(1000);
    return o;
  }

  // Worker w pushes `g` to every key and to every dense element; returns the
  // tickets (sparse, dense).
  static std::pair<worker::KvClient::Ticket, worker::KvClient::Ticket> StartRound(
      worker::KvClient& kv, const std::vector<Key>& keys, std::vector<float>& sparse_grads,
      std::vector<float>& dense_grads, float g) {
    sparse_grads.assign(keys.size() * kDim, g);
    dense_grads.assign(kDenseSize, g);
    auto s = kv.Push(kEmb, keys, sparse_grads);
    auto d = kv.DensePush(kDense, dense_grads);
    EXPECT_OK(s);
    EXPECT_OK(d);
    return {s.ok() ? *s : 0, d.ok() ? *d : 0};
  }

  static void Round(worker::KvClient& kv, const std::vector<Key>& keys, float g) {
    std::vector<float> sparse, dense;
    auto [s, d] = StartRound(kv, keys, sparse, dense, g);
    ASSERT_OK(kv.Wait(s, DeadlineIn(kWait)));
    ASSERT_OK(kv.Wait(d, DeadlineIn(kWait)));
  }

  // `rounds` rounds in which worker 0 pushes 0.25 and worker 1 pushes 0.5;
  // returns what they add to every value's gradient sum.
  static float BothWorkersPush(InProcCluster& c, const std::vector<Key>& keys, int rounds) {
    for (int round = 0; round < rounds; ++round) {
      Round(c.worker(0).kv(), keys, 0.25f);
      Round(c.worker(1).kv(), keys, 0.5f);
    }
    return 0.75f * static_cast<float>(rounds);
  }

  // Declares server `dead` dead: the others keep beating while the
  // simulated clock passes the timeout.
  void DeclareDead(InProcCluster& c, int dead) {
    for (int i = 0; i < 10; ++i) {
      clock_.AdvanceTime(std::chrono::milliseconds(300));
      c.SendHeartbeats();
      for (NodeId n : c.scheduler().CheckLiveness()) {
        if (n == NodeId{Role::kServer, dead}) return;
      }
    }
    FAIL() << "server " << dead << " was never declared dead";
  }

  static void ExpectValues(worker::KvClient& kv, const std::vector<Key>& keys, float want) {
    std::vector<float> rows(keys.size() * kDim);
    ASSERT_OK_AND_ASSIGN(auto t, kv.Pull(kEmb, keys, rows));
    ASSERT_OK(kv.Wait(t, DeadlineIn(kWait)));
    size_t wrong = 0;
    for (float v : rows) wrong += v != want ? 1 : 0;
    EXPECT_EQ(wrong, 0u) << "first row: " << rows[0] << ", want " << want;
    std::vector<float> dense(kDenseSize);
    ASSERT_OK_AND_ASSIGN(auto d, kv.DensePull(kDense, dense));
    ASSERT_OK(kv.Wait(d, DeadlineIn(kWait)));
    wrong = 0;
    for (float v : dense) wrong += v != want ? 1 : 0;
    EXPECT_EQ(wrong, 0u) << "dense[0]: " << dense[0] << ", want " << want;
  }

  SimulatedClock clock_;
};

TEST_P(FailoverTest, PrimaryDeathLosesNoAcknowledgedUpdate) {
  InProcCluster c(Options(), &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  worker::KvClient& kv0 = c.worker(0).kv();
  worker::KvClient& kv1 = c.worker(1).kv();
  float sum = BothWorkersPush(c, keys, 5);
  EXPECT_GT(Metric(c.server_metrics(1), "tessera_server_replication_batches_total"), 0);

  c.KillServer(1);
  // A push in flight while server 1 dies: its part for server 1 waits for
  // the new view, then goes to the promoted backup.
  std::vector<float> sparse, dense;
  auto [s, d] = StartRound(kv0, keys, sparse, dense, 0.25f);
  sum += 0.25f;
  DeclareDead(c, 1);
  ASSERT_OK(kv0.Wait(s, DeadlineIn(kWait)));
  ASSERT_OK(kv0.Wait(d, DeadlineIn(kWait)));
  EXPECT_EQ(kv0.view().dead_servers, std::vector<int32_t>{1});
  EXPECT_GT(Metric(c.server_metrics(2), "tessera_server_promoted_rows_total"), 0);
  EXPECT_GT(c.scheduler_metrics()
                .GetGauge("tessera_scheduler_last_recovery_seconds", "")
                .Value(),
            0);

  sum += BothWorkersPush(c, keys, 5);
  ExpectValues(kv1, keys, -sum);
  ExpectValues(kv0, keys, -sum);
}

TEST_P(FailoverTest, ReplacementServerTakesTheDeadServersSlotsBack) {
  InProcCluster c(Options(), &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  worker::KvClient& kv0 = c.worker(0).kv();
  worker::KvClient& kv1 = c.worker(1).kv();
  float sum = 0;
  for (int round = 0; round < 3; ++round) {
    Round(kv0, keys, 0.25f);
    sum += 0.25f;
  }
  const size_t rows_before = c.server(1).tables().Find(kEmb)->sparse->num_rows();
  ASSERT_GT(rows_before, 0u);
  c.KillServer(1);
  DeclareDead(c, 1);
  Round(kv0, keys, 0.5f);  // on server 2 in server 1's place
  sum += 0.5f;

  ASSERT_OK(c.ReplaceServer(1));
  // The handoff ends with a view (epoch 4: start, failover, join, move)
  // reaching the workers; pushes go on meanwhile.
  const SteadyTime deadline = DeadlineIn(kWait);
  while (kv1.view().epoch < 4 && std::chrono::steady_clock::now() < deadline) {
    Round(kv1, keys, 0.25f);
    sum += 0.25f;
  }
  ASSERT_EQ(kv1.view().epoch, 4u);
  EXPECT_TRUE(kv1.view().dead_servers.empty());
  sum += BothWorkersPush(c, keys, 3);
  // Server 1 serves its original slots again, with every update.
  EXPECT_EQ(c.server(1).tables().Find(kEmb)->sparse->num_rows(), rows_before);
  ExpectValues(kv0, keys, -sum);
  // Server 2 gave those rows up.
  EXPECT_EQ(c.server(0).tables().Find(kEmb)->sparse->num_rows() +
                c.server(1).tables().Find(kEmb)->sparse->num_rows() +
                c.server(2).tables().Find(kEmb)->sparse->num_rows(),
            keys.size());
}

// A server cut off from the scheduler is declared dead while it still runs
// and still hears from workers: its backup must refuse its batches once
// promoted (fencing), so nothing it acknowledges can be lost, and the
// workers' resent parts are applied once by the promoted server.
TEST_P(FailoverTest, PartitionedPrimaryIsFencedOff) {
  InProcClusterOptions o = Options();
  o.faulty_servers = true;
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  worker::KvClient& kv0 = c.worker(0).kv();
  float sum = 0;
  for (int round = 0; round < 3; ++round) {
    Round(kv0, keys, 0.25f);
    sum += 0.25f;
  }
  c.PartitionServerFromScheduler(1);
  DeclareDead(c, 1);
  // Workers may still reach server 1 until their view changes; every push
  // completes through server 2.
  for (int round = 0; round < 3; ++round) {
    Round(kv0, keys, 0.5f);
    Round(c.worker(1).kv(), keys, 0.25f);
    sum += 0.75f;
  }
  EXPECT_EQ(kv0.view().dead_servers, std::vector<int32_t>{1});
  ExpectValues(kv0, keys, -sum);
}

TEST_P(FailoverTest, DuplicatedPushesAreAppliedOnce) {
  InProcClusterOptions o = Options();
  o.worker_faults = FaultConfig{.duplicate_probability = 1.0};
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  for (int round = 0; round < 4; ++round) Round(c.worker(round % 2).kv(), keys, 0.25f);
  ExpectValues(c.worker(0).kv(), keys, -1.0f);
  double duplicates = 0;
  for (int i = 0; i < 3; ++i) {
    duplicates += Metric(c.server_metrics(i), "tessera_server_duplicate_ops_total");
  }
  EXPECT_GT(duplicates, 0);
}

// Replication 2 covers one failure at a time: once the servers report that
// their new backups have complete copies, a second server may die too.
TEST_P(FailoverTest, SecondDeathAfterReReplicationLosesNothing) {
  InProcCluster c(Options(), &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  worker::KvClient& kv0 = c.worker(0).kv();
  float sum = BothWorkersPush(c, keys, 2);
  c.KillServer(1);
  DeclareDead(c, 1);
  // Pushes are acknowledged once the new backups have them (full copies
  // first); then the servers report it.
  sum += BothWorkersPush(c, keys, 2);
  c.SendHeartbeats();
  c.KillServer(0);
  DeclareDead(c, 0);
  sum += BothWorkersPush(c, keys, 2);
  EXPECT_EQ(kv0.view().dead_servers, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(c.scheduler().shutdown_reason(), "");
  ExpectValues(kv0, keys, -sum);
}

// A second death before the new backups have complete copies (here server
// 0's copy to server 2 never arrives) stops the job instead of promoting a
// backup that lacks acknowledged updates.
TEST_P(FailoverTest, SecondDeathBeforeReReplicationStopsTheJob) {
  InProcClusterOptions o = Options();
  o.faulty_servers = true;
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  BothWorkersPush(c, keys, 2);
  c.PartitionServers(0, 2);
  c.KillServer(1);
  DeclareDead(c, 1);
  c.SendHeartbeats();
  c.KillServer(0);
  DeclareDead(c, 0);
  ASSERT_OK(c.scheduler().WaitForShutdown(DeadlineIn(kWait)));
  EXPECT_THAT(c.scheduler().shutdown_reason(),
              ::testing::AllOf(::testing::HasSubstr("server/0 died before its backups had a "
                                                    "complete copy"),
                               ::testing::HasSubstr("--resume")));
}

// The data plane (pulls, pushes, replication and their replies) drops,
// delays, reorders and duplicates messages; a part or replication message
// without a reply within the request timeout goes again, with the same
// operation id or batch number. No update is lost or applied twice, also
// when a primary dies midway. (The control plane is spared: registration,
// barriers and views are not retried.)
TEST_P(FailoverTest, LossyNetworkLosesNoUpdate) {
  InProcClusterOptions o = Options();
  const FaultConfig faults{.drop_probability = 0.05,
                           .duplicate_probability = 0.05,
                           .delay_probability = 0.05,
                           .delay_release_after_sends = 3,
                           .reorder_probability = 0.05,
                           .spare_scheduler = true};
  o.worker_faults = faults;
  o.server_faults = faults;
  o.request_timeout = std::chrono::milliseconds(50);
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  const std::vector<Key> keys = Keys();
  float sum = BothWorkersPush(c, keys, 10);
  c.KillServer(1);
  DeclareDead(c, 1);
  sum += BothWorkersPush(c, keys, 10);
  const FaultCounters f = c.fault_counters();
  c.HealFaults();
  ExpectValues(c.worker(0).kv(), keys, -sum);
  EXPECT_GT(f.dropped, 0u);
  EXPECT_GT(f.delayed, 0u);
  EXPECT_GT(f.reordered, 0u);
  EXPECT_GT(f.duplicated, 0u);
  double resent_parts = 0, resent_batches = 0;
  for (int i = 0; i < 2; ++i) {
    resent_parts += Metric(c.worker_metrics(i), "tessera_worker_kv_resent_parts_total");
  }
  for (int i = 0; i < 3; ++i) {
    resent_batches += Metric(c.server_metrics(i), "tessera_server_replication_resent_total");
  }
  EXPECT_GT(resent_parts, 0);
  EXPECT_GT(resent_batches, 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, FailoverTest,
                         ::testing::Values(ClusterTransport::kInProc, ClusterTransport::kZmqTcp),
                         [](const auto& info) {
                           return info.param == ClusterTransport::kInProc ? "InProc" : "Zmq";
                         });

}  // namespace
}  // namespace tessera
