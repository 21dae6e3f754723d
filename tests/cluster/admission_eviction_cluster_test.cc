// A server with admission and eviction configured through the scheduler's
// table configuration: the policies reach the table and the server exports
// their metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

using testing::InProcCluster;
using testing::InProcClusterOptions;
using ::testing::UnorderedElementsAre;

constexpr auto kWait = std::chrono::seconds(20);
constexpr TableId kEmb = 0;
constexpr uint32_t kDim = 4;

double Counter(MetricsRegistry& m, const std::string& name, const MetricLabels& labels) {
  return m.GetCounter(name, "", labels).Value();
}

class AdmissionEvictionClusterTest : public ::testing::Test {
 protected:
  void Push(InProcCluster& c, const std::vector<Key>& keys) {
    const std::vector<float> grads(keys.size() * kDim, 1.0f);
    auto t = c.worker(0).kv().Push(kEmb, keys, grads);
    ASSERT_OK(t);
    ASSERT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
  }
  // Requests are handled in order on the server's receive thread, so once a
  // pull is answered, the work a push does after its ack (eviction sweep,
  // metrics) is done too.
  void Pull(InProcCluster& c, const std::vector<Key>& keys) {
    std::vector<float> out(keys.size() * kDim);
    auto t = c.worker(0).kv().Pull(kEmb, keys, out);
    ASSERT_OK(t);
    ASSERT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
  }
  SimulatedClock clock_;
};

TEST_F(AdmissionEvictionClusterTest, PoliciesApplyAndAreCounted) {
  TableConfig emb;
  emb.id = kEmb;
  emb.name = "emb";
  emb.dim = kDim;
  emb.optimizer.type = OptimizerType::kSgd;
  emb.admission.min_count = 2;
  emb.eviction.ttl_s = 10;
  InProcClusterOptions o;
  o.num_servers = 1;
  o.num_workers = 1;
  o.tables = {emb};
  InProcCluster c(o, &clock_);
  ASSERT_OK(c.Start());
  server::EmbeddingTable& table = *c.server(0).tables().Find(kEmb)->sparse;
  (void)table.Capture(/*full=*/true);  // Starts change tracking: evictions become tombstones.

  Push(c, {1, 2, 3});  // Not admitted yet: dropped.
  Pull(c, {1});
  EXPECT_EQ(table.num_rows(), 0u);
  Push(c, {1, 2, 3});  // Second occurrence of 2 and 3, third of 1.
  Pull(c, {1});
  EXPECT_EQ(table.num_rows(), 3u);
  MetricsRegistry& m = c.server_metrics(0);
  const MetricLabels labels{{"table", "emb"}};
  EXPECT_EQ(Counter(m, "tessera_server_keys_rejected_total", labels), 3);
  EXPECT_EQ(Counter(m, "tessera_server_rows_admitted_total", labels), 3);
  EXPECT_GT(m.GetGauge("tessera_server_admission_sketch_bytes", "", labels).Value(), 0);

  clock_.AdvanceTime(std::chrono::seconds(10));
  Push(c, {9});  // Rejected, but the push runs the sweep: 1, 2, 3 expire.
  Pull(c, {9});
  EXPECT_EQ(table.num_rows(), 0u);
  EXPECT_EQ(Counter(m, "tessera_server_rows_evicted_total", {{"table", "emb"}, {"reason", "ttl"}}),
            3);
  EXPECT_EQ(
      Counter(m, "tessera_server_rows_evicted_total", {{"table", "emb"}, {"reason", "max_rows"}}),
      0);
  EXPECT_THAT(table.Capture(false).deleted, UnorderedElementsAre(1, 2, 3));
  EXPECT_TRUE(table.Capture(false).deleted.empty());
}

}  // namespace
}  // namespace tessera
