// Scheduler + servers + workers in one process, over InProcTransport and over
// ZeroMQ tcp://127.0.0.1: exact push/pull semantics against single-node
// references.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "protocols/codec.h"
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
constexpr uint64_t kDenseSize = 1001;

std::vector<TableConfig> SgdTables(float lr) {
  TableConfig emb;
  emb.id = kEmb;
  emb.name = "emb";
  emb.dim = kDim;
  emb.optimizer.type = OptimizerType::kSgd;
  emb.optimizer.learning_rate = lr;
  emb.initializer = {InitializerType::kUniform, 0.5f, 42};
  TableConfig dense;
  dense.id = kDense;
  dense.name = "mlp";
  dense.kind = TableKind::kDense;
  dense.size = kDenseSize;
  dense.optimizer = emb.optimizer;
  dense.initializer = {InitializerType::kNormal, 0.1f, 7};
  return {emb, dense};
}

class KvClusterTest : public ::testing::TestWithParam<ClusterTransport> {
 protected:
  InProcClusterOptions Options(int servers, int workers, float lr = 1.0f) {
    InProcClusterOptions o;
    o.num_servers = servers;
    o.num_workers = workers;
    o.tables = SgdTables(lr);
    o.transport = GetParam();
    return o;
  }

  static std::vector<float> PullAll(worker::KvClient& kv, TableId table,
                                    const std::vector<Key>& keys) {
    std::vector<float> out(keys.size() * kDim);
    auto t = kv.Pull(table, keys, out);
    EXPECT_OK(t);
    if (t.ok()) {
      EXPECT_OK(kv.Wait(*t, DeadlineIn(kWait)));
    }
    return out;
  }

  SimulatedClock clock_;
};

TEST_P(KvClusterTest, ConcurrentPushesEqualTheSingleNodeSgdReference) {
  InProcCluster c(Options(2, 2), &clock_);
  ASSERT_OK(c.Start());
  std::vector<Key> keys;
  for (Key k = 0; k < 500; ++k) keys.push_back(k * 1000003);
  const std::vector<float> initial = PullAll(c.worker(0).kv(), kEmb, keys);

  // Each worker pushes 20 rounds of random gradients on an overlapping half
  // of the keys (with duplicates inside a request), concurrently.
  constexpr int kRounds = 20;
  std::vector<std::vector<double>> expected_sum(2, std::vector<double>(keys.size() * kDim));
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(100 + w);
      std::uniform_real_distribution<float> grad(-1, 1);
      for (int r = 0; r < kRounds; ++r) {
        std::vector<Key> batch;
        std::vector<size_t> index;
        const size_t first = static_cast<size_t>(w) * 100;
        for (size_t i = first; i < first + 350; ++i) {
          batch.push_back(keys[i]);
          index.push_back(i);
        }
        batch.push_back(keys[first]);  // a duplicate
        index.push_back(first);
        std::vector<float> g(batch.size() * kDim);
        for (size_t j = 0; j < g.size(); ++j) {
          g[j] = grad(rng);
          expected_sum[w][index[j / kDim] * kDim + j % kDim] += g[j];
        }
        auto t = c.worker(w).kv().Push(kEmb, batch, g);
        ASSERT_OK(t);
        ASSERT_OK(c.worker(w).kv().Wait(*t, DeadlineIn(kWait)));
      }
    });
  }
  for (auto& t : threads) t.join();

  const std::vector<float> final_values = PullAll(c.worker(1).kv(), kEmb, keys);
  for (size_t j = 0; j < final_values.size(); ++j) {
    const double want = initial[j] - 1.0 * (expected_sum[0][j] + expected_sum[1][j]);
    ASSERT_NEAR(final_values[j], want, 1e-3) << "float " << j;
  }
}

TEST_P(KvClusterTest, NeverSeenKeyPullsTheSameInitialValueWhateverTheServerCount) {
  std::vector<Key> keys = {0, 1, 2, 77, 1ull << 40, ~0ull};
  std::vector<std::vector<float>> per_layout;
  for (int servers : {1, 3}) {
    InProcCluster c(Options(servers, 1), &clock_);
    ASSERT_OK(c.Start());
    per_layout.push_back(PullAll(c.worker(0).kv(), kEmb, keys));
  }
  EXPECT_EQ(per_layout[0], per_layout[1]);
  float spread = 0;
  for (float v : per_layout[0]) {
    EXPECT_LE(std::fabs(v), 0.5f);
    spread = std::max(spread, std::fabs(v));
  }
  EXPECT_GT(spread, 0.0f);  // uniform(-0.5, 0.5), not zeros
}

TEST_P(KvClusterTest, DenseTableIsSplitAcrossServersAndReassembled) {
  InProcCluster c(Options(2, 1, 0.5f), &clock_);
  ASSERT_OK(c.Start());
  worker::KvClient& kv = c.worker(0).kv();
  std::vector<float> before(kDenseSize), after(kDenseSize), grads(kDenseSize);
  ASSERT_OK_AND_ASSIGN(auto t0, kv.DensePull(kDense, before));
  ASSERT_OK(kv.Wait(t0, DeadlineIn(kWait)));
  for (size_t i = 0; i < kDenseSize; ++i) grads[i] = static_cast<float>(i % 13) - 6.0f;
  ASSERT_OK_AND_ASSIGN(auto t1, kv.DensePush(kDense, grads));
  ASSERT_OK(kv.Wait(t1, DeadlineIn(kWait)));
  ASSERT_OK_AND_ASSIGN(auto t2, kv.DensePull(kDense, after));
  ASSERT_OK(kv.Wait(t2, DeadlineIn(kWait)));
  for (size_t i = 0; i < kDenseSize; ++i) {
    ASSERT_FLOAT_EQ(after[i], before[i] - 0.5f * grads[i]) << i;
  }
  // Each server holds a part, and the parts cover the table exactly once.
  uint64_t held = 0;
  for (int s = 0; s < 2; ++s) {
    const server::ServerTable* t = c.server(s).tables().Find(kDense);
    ASSERT_NE(t, nullptr);
    uint64_t mine = 0;
    for (const DenseRange& r : t->dense->ranges()) mine += r.end - r.begin;
    EXPECT_GT(mine, 0u);
    held += mine;
  }
  EXPECT_EQ(held, kDenseSize);
}

TEST_P(KvClusterTest, PushPullReturnsTheUpdatedRowsInCallerOrder) {
  InProcCluster c(Options(2, 1), &clock_);
  ASSERT_OK(c.Start());
  worker::KvClient& kv = c.worker(0).kv();
  std::vector<Key> keys = {5, 9, 5, 12345};
  const std::vector<float> initial = PullAll(kv, kEmb, keys);
  std::vector<float> grads(keys.size() * kDim, 1.0f);
  std::vector<float> out(keys.size() * kDim);
  ASSERT_OK_AND_ASSIGN(auto t, kv.PushPull(kEmb, keys, grads, out));
  ASSERT_OK(kv.Wait(t, DeadlineIn(kWait)));
  for (size_t d = 0; d < kDim; ++d) {
    EXPECT_FLOAT_EQ(out[0 * kDim + d], initial[d] - 2.0f);  // key 5 twice: summed
    EXPECT_FLOAT_EQ(out[2 * kDim + d], out[d]);
    EXPECT_FLOAT_EQ(out[1 * kDim + d], initial[kDim + d] - 1.0f);
    EXPECT_FLOAT_EQ(out[3 * kDim + d], initial[3 * kDim + d] - 1.0f);
  }
}

TEST_P(KvClusterTest, BadRequestsGetClearErrors) {
  InProcCluster c(Options(2, 1), &clock_);
  ASSERT_OK(c.Start());
  worker::KvClient& kv = c.worker(0).kv();
  std::vector<Key> keys = {1, 2};
  std::vector<float> wrong(3);
  EXPECT_EQ(kv.Push(kEmb, keys, wrong).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> out(keys.size() * kDim);
  EXPECT_EQ(kv.Pull(99, keys, out).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.Pull(kDense, keys, out).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.Wait(12345, DeadlineIn(kWait)).code(), StatusCode::kNotFound);
}

TEST_P(KvClusterTest, ServersRefuseRequestsOverTheKeyLimit) {
  InProcCluster c(Options(1, 1), &clock_);
  ASSERT_OK(c.Start());
  std::vector<Key> keys((size_t{1} << 22) + 1);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = i;
  std::vector<float> out(keys.size() * kDim);
  ASSERT_OK_AND_ASSIGN(worker::KvClient::Ticket t, c.worker(0).kv().Pull(kEmb, keys, out));
  const Status s = c.worker(0).kv().Wait(t, DeadlineIn(kWait));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_NE(std::string(s.message()).find("more than the limit"), std::string::npos) << s;
  // The server goes on serving.
  keys.resize(3);
  out.resize(3 * kDim);
  ASSERT_OK_AND_ASSIGN(t, c.worker(0).kv().Pull(kEmb, keys, out));
  EXPECT_OK(c.worker(0).kv().Wait(t, DeadlineIn(kWait)));
}

TEST_P(KvClusterTest, OperationsInFlightAreLimited) {
  InProcCluster c(Options(1, 1), &clock_);
  ASSERT_OK(c.Start());
  worker::KvClient& kv = c.worker(0).kv();
  const std::vector<Key> keys = {1};
  std::vector<float> out(kDim);
  std::vector<worker::KvClient::Ticket> tickets;
  for (size_t i = 0; i < worker::KvClient::kMaxInFlight; ++i) {
    ASSERT_OK_AND_ASSIGN(worker::KvClient::Ticket t, kv.Pull(kEmb, keys, out));
    tickets.push_back(t);
  }
  EXPECT_EQ(kv.Pull(kEmb, keys, out).status().code(), StatusCode::kResourceExhausted);
  for (worker::KvClient::Ticket t : tickets) ASSERT_OK(kv.Wait(t, DeadlineIn(kWait)));
  ASSERT_OK_AND_ASSIGN(worker::KvClient::Ticket t, kv.Pull(kEmb, keys, out));
  EXPECT_OK(kv.Wait(t, DeadlineIn(kWait)));
}

TEST_P(KvClusterTest, ShutdownRequestReachesEveryNode) {
  InProcCluster c(Options(2, 2), &clock_);
  ASSERT_OK(c.Start());
  ASSERT_OK(c.worker(1).member().RequestClusterShutdown("test done", DeadlineIn(kWait)));
  EXPECT_OK(c.scheduler().WaitForShutdown(DeadlineIn(kWait)));
  for (int s = 0; s < 2; ++s) EXPECT_OK(c.server(s).WaitForShutdown(DeadlineIn(kWait)));
  for (int w = 0; w < 2; ++w) EXPECT_OK(c.worker(w).member().WaitForShutdown(DeadlineIn(kWait)));
  c.Stop();  // joins every thread; a hang fails the test by timeout
}

TEST_P(KvClusterTest, WorkersMeetAtBarrier) {
  InProcCluster c(Options(1, 3), &clock_);
  ASSERT_OK(c.Start());
  std::vector<Status> results(3);
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      results[w] = c.worker(w).member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kWait));
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_OK(s);
}

TEST_P(KvClusterTest, WaitOnADeadServerTimesOutInsteadOfHanging) {
  InProcCluster c(Options(2, 1), &clock_);
  ASSERT_OK(c.Start());
  c.KillServer(1);
  std::vector<Key> keys;
  for (Key k = 0; k < 64; ++k) keys.push_back(k);  // some belong to server 1
  std::vector<float> out(keys.size() * kDim);
  StatusOr<worker::KvClient::Ticket> t = c.worker(0).kv().Pull(kEmb, keys, out);
  if (t.ok()) {
    Status s = c.worker(0).kv().Wait(*t, DeadlineIn(std::chrono::milliseconds(300)));
    EXPECT_TRUE(s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kUnavailable)
        << s;
  } else {
    EXPECT_EQ(t.status().code(), StatusCode::kUnavailable);
  }
}

// The cluster shutting down ends what a worker waits for at once (its
// servers stop: nothing in flight will be answered), instead of at the
// operation's deadline.
TEST_P(KvClusterTest, ClusterShutdownEndsOperationsInFlight) {
  InProcCluster c(Options(2, 2), &clock_);
  ASSERT_OK(c.Start());
  c.KillServer(1);  // never answers
  std::vector<Key> keys;
  for (Key k = 0; k < 64; ++k) keys.push_back(k);  // some belong to server 1
  std::vector<float> grads(keys.size() * kDim, 1.0f);
  ASSERT_OK_AND_ASSIGN(worker::KvClient::Ticket t, c.worker(0).kv().Push(kEmb, keys, grads));
  ASSERT_OK(c.worker(1).member().RequestClusterShutdown("test done", DeadlineIn(kWait)));
  const auto start = std::chrono::steady_clock::now();
  Status s = c.worker(0).kv().Wait(t, DeadlineIn(std::chrono::seconds(60)));
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("cluster shutting down: test done"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

INSTANTIATE_TEST_SUITE_P(Transports, KvClusterTest,
                         ::testing::Values(ClusterTransport::kInProc, ClusterTransport::kZmqTcp),
                         [](const ::testing::TestParamInfo<ClusterTransport>& info) {
                           return info.param == ClusterTransport::kInProc ? "InProc" : "ZmqTcp";
                         });

}  // namespace
}  // namespace tessera
