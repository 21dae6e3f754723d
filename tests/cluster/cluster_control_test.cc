// Control plane in one process: registration, heartbeats and failure
// detection on a SimulatedClock, and hostile input on the data plane.
#include <gtest/gtest.h>

#include <string>

#include "protocols/codec.h"
#include "tests/testing/in_proc_cluster.h"
#include "tests/testing/status_matchers.h"

namespace tessera {
namespace {

using testing::InProcCluster;
using testing::InProcClusterOptions;

constexpr auto kWait = std::chrono::seconds(20);

InProcClusterOptions SmallCluster() {
  InProcClusterOptions o;
  o.num_servers = 2;
  o.num_workers = 1;
  TableConfig emb;
  emb.name = "emb";
  emb.dim = 2;
  o.tables = {emb};
  o.heartbeat_timeout = std::chrono::milliseconds(1000);
  return o;
}

double CounterValue(MetricsRegistry& m, const std::string& name) {
  return m.GetCounter(name, "").Value();
}

TEST(ClusterControlTest, SilentServerIsDeclaredDeadOthersStayAlive) {
  SimulatedClock clock;
  InProcCluster c(SmallCluster(), &clock);
  ASSERT_OK(c.Start());
  EXPECT_EQ(c.scheduler().nodes().size(), 3u);

  for (int step = 0; step < 5; ++step) {  // 5 x 600 ms, everyone beating
    clock.AdvanceTime(std::chrono::milliseconds(600));
    c.SendHeartbeats();
    EXPECT_TRUE(c.scheduler().CheckLiveness().empty()) << "step " << step;
  }
  c.KillServer(1);
  clock.AdvanceTime(std::chrono::milliseconds(600));
  c.SendHeartbeats();
  EXPECT_TRUE(c.scheduler().CheckLiveness().empty());  // 600 ms < timeout
  clock.AdvanceTime(std::chrono::milliseconds(600));
  c.SendHeartbeats();
  std::vector<NodeId> dead = c.scheduler().CheckLiveness();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], (NodeId{Role::kServer, 1}));
  EXPECT_TRUE(c.scheduler().CheckLiveness().empty());  // reported once
  EXPECT_EQ(CounterValue(c.scheduler_metrics(), "tessera_scheduler_nodes_declared_dead_total"), 1);
}

TEST(ClusterControlTest, WrongTokenAndGarbageAreDroppedAndCounted) {
  SimulatedClock clock;
  InProcCluster c(SmallCluster(), &clock);
  ASSERT_OK(c.Start());
  std::unique_ptr<Transport> rogue = c.NewTransport();
  ASSERT_OK(rogue->Bind("mem://"));
  const NodeId target{Role::kServer, 0};
  ASSERT_OK(rogue->Connect(target, c.server(0).endpoint()));
  const NodeId me{Role::kWorker, 7};

  protocol::Header h;
  h.sender = me;
  h.request_id = 1;
  h.token = "not-the-token";
  std::vector<Key> keys = {1};
  ASSERT_OK(rogue->Send(Message{me, target, {protocol::EncodePull(h, 0, keys)}}));
  ASSERT_OK(rogue->Send(Message{me, target, {Frame::FromString("definitely not a flatbuffer")}}));
  ASSERT_OK(rogue->Send(Message{me, target, {}}));

  // The server keeps serving a legitimate client while it drops the rogue
  // messages; pull until the rejections are counted.
  MetricsRegistry& m = c.server_metrics(0);
  const std::string name = "tessera_server_rejected_messages_total";
  auto rejected = [&](const char* reason) {
    return m.GetCounter(name, "", {{"reason", reason}}).Value();
  };
  const SteadyTime deadline = DeadlineIn(kWait);
  while ((rejected("token") < 1 || rejected("malformed") < 2) &&
         std::chrono::steady_clock::now() < deadline) {
    std::vector<float> out(2);
    auto t = c.worker(0).kv().Pull(0, keys, out);
    ASSERT_OK(t);
    ASSERT_OK(c.worker(0).kv().Wait(*t, DeadlineIn(kWait)));
  }
  EXPECT_EQ(rejected("token"), 1);
  EXPECT_EQ(rejected("malformed"), 2);
}

}  // namespace
}  // namespace tessera
